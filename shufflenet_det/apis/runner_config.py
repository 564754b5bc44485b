"""Config handling shared by the training and evaluation entry points."""
import os.path as osp
from collections.abc import Mapping
from typing import Optional

from mmengine.config import Config
from mmengine.logging import print_log

from ..config import DATALOADERS, load_config
from ..datasets import set_data_root
from ..errors import ConfigError
from ..fileio import check_writable


def check_neck_in_channels(model_cfg: Mapping) -> None:
    """Raise a ConfigError if ``model.neck.in_channels`` differ from the backbone's
    ``out_channels`` (else a shape error deep in the first forward pass), or if the
    backbone refuses its settings. Backbones without ``out_channels`` are not checked."""
    from mmdet.registry import MODELS

    backbone_cfg, neck_cfg = model_cfg.get('backbone'), model_cfg.get('neck')
    if not backbone_cfg:
        return
    backbone_cfg = {k: v for k, v in backbone_cfg.items() if k != 'init_cfg'}
    try:
        backbone = MODELS.build(backbone_cfg)
    except ValueError as exc:
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


def prepare_config(config: str, work_dir: Optional[str] = None,
                   cfg_options: Optional[dict] = None, data_root: Optional[str] = None,
                   launcher: str = 'none') -> Config:
    """Load ``config`` with the overrides the tools share, and check what can be checked
    before anything is built.

    The work dir is ``work_dir``, else the config's, else ``./work_dirs/<config name>``,
    and must be writable. ``data_root`` wins over a root in ``cfg_options``. A dataloader
    with ``num_workers=0`` gets ``persistent_workers=False`` (PyTorch refuses the pair,
    and MMEngine builds dataloaders only when their loop starts).

    Raises:
        InputError: the config is missing or unreadable, an option cannot take effect, the
            work dir cannot be written, or the backbone and neck do not fit.
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
    for name in DATALOADERS:
        loader = cfg.get(name)
        if isinstance(loader, Mapping) and loader.get('num_workers') == 0 \
                and loader.get('persistent_workers'):
            loader['persistent_workers'] = False
            print_log(f'{name}: num_workers=0, so persistent_workers is turned off (PyTorch\'s '
                      'DataLoader allows it only with num_workers > 0)', logger='current')
    if 'model' in cfg:
        check_neck_in_channels(cfg.model)
    return cfg
