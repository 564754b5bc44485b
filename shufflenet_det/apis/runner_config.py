"""Config handling shared by the training and evaluation entry points."""
import copy
import os.path as osp
from collections.abc import Mapping
from typing import Optional

from mmengine.config import Config
from mmengine.logging import print_log

from ..config import DATALOADERS, load_config
from ..datasets.layout import set_data_root
from ..errors import ConfigError
from ..fileio import check_writable


def check_neck_in_channels(model_cfg: Mapping) -> None:
    """Raise if ``model.neck.in_channels`` differ from what the backbone returns.

    Otherwise the mismatch surfaces only in the first forward pass, as a
    convolution shape error deep inside the neck. The backbone is built without
    its weights' initialisation to read its ``out_channels``; a backbone whose
    settings are invalid fails here, with its own message. Backbones that do not
    publish ``out_channels`` (most of MMDetection's) are not checked.

    Raises:
        ConfigError: naming both channel lists, or the backbone's invalid setting.
    """
    from mmdet.registry import MODELS

    backbone_cfg, neck_cfg = model_cfg.get('backbone'), model_cfg.get('neck')
    if not backbone_cfg:
        return
    backbone_cfg = copy.deepcopy(dict(backbone_cfg))
    backbone_cfg.pop('init_cfg', None)
    try:
        backbone = MODELS.build(backbone_cfg)
    except ValueError as exc:  # the backbone's own check of its arguments
        raise ConfigError(f'model.backbone ({backbone_cfg.get("type")}): {exc}') from exc
    out_channels = getattr(backbone, 'out_channels', None)
    neck_cfg = neck_cfg[0] if isinstance(neck_cfg, (list, tuple)) else neck_cfg
    in_channels = neck_cfg.get('in_channels') if neck_cfg else None
    if out_channels is None or not isinstance(in_channels, (list, tuple)) \
            or list(in_channels) == list(out_channels):
        return
    settings = [f'{k}={backbone_cfg[k]}' for k in ('groups', 'widen_factor', 'out_indices')
                if k in backbone_cfg]
    if 'out_indices' not in backbone_cfg and hasattr(backbone, 'out_indices'):
        settings.append(f'out_indices={tuple(backbone.out_indices)} by default')
    raise ConfigError(
        f'model.neck ({neck_cfg.get("type")}) in_channels={list(in_channels)} do not match '
        f'the backbone\'s out_channels={list(out_channels)} ({backbone_cfg["type"]} '
        f'{", ".join(settings)}). Derive the neck\'s in_channels from the backbone, e.g. with '
        'shufflenet_v1_channels(groups, widen_factor) as the configs in configs/ do.')


def drop_persistent_workers_without_workers(cfg: Config) -> None:
    """Turn ``persistent_workers`` off in every dataloader with ``num_workers=0``.

    PyTorch's ``DataLoader`` raises ``ValueError: persistent_workers option needs
    num_workers > 0``, and MMEngine builds a dataloader only when its loop starts,
    after the model is built. ``--cfg-options train_dataloader.num_workers=0`` (the
    usual way to debug a dataset in the main process) would otherwise fail there
    on every config that sets ``persistent_workers=True``. One INFO line names each
    dataloader changed.
    """
    for name in DATALOADERS:
        loader = cfg.get(name)
        if isinstance(loader, Mapping) and loader.get('num_workers') == 0 \
                and loader.get('persistent_workers'):
            loader['persistent_workers'] = False
            print_log(f'{name}: num_workers=0, so persistent_workers is turned off (PyTorch\'s '
                      'DataLoader allows it only with num_workers > 0)', logger='current')


def prepare_config(config: str,
                   work_dir: Optional[str] = None,
                   cfg_options: Optional[dict] = None,
                   data_root: Optional[str] = None,
                   launcher: str = 'none') -> Config:
    """Load ``config`` and apply the command-line overrides the tools share.

    The work directory is, in order of preference: ``work_dir``, the config's
    ``work_dir``, ``./work_dirs/<config name>``. ``data_root`` is applied after
    ``cfg_options``, so it wins over a root set there. The work directory must be
    writable (or creatable), and the model's backbone and neck are checked to fit
    together (:func:`check_neck_in_channels`). A dataloader with ``num_workers=0``
    gets ``persistent_workers=False`` (:func:`drop_persistent_workers_without_workers`).

    Raises:
        InputFileNotFoundError: ``config`` does not exist.
        ConfigError: the config cannot be read, an option cannot take effect, the
            work directory cannot be written, or the backbone and neck cannot work.
    """
    cfg = load_config(config, cfg_options)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    check_writable(cfg.work_dir, '--work-dir' if work_dir is not None else 'work_dir',
                   directory=True)
    if data_root is not None:
        set_data_root(cfg, data_root)
    drop_persistent_workers_without_workers(cfg)
    if 'model' in cfg:
        check_neck_in_channels(cfg.model)
    return cfg
