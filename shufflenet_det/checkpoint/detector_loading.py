"""A detector built from its config with a checkpoint loaded strictly, read once."""
import copy
from collections.abc import Mapping

from mmengine.config import Config
from torch import nn

from ..config import load_config
from .files import load_checkpoint_file
from .pretrained import load_model_checkpoint


def detector_dataset_meta(cfg: Config, checkpoint_meta: Mapping) -> dict:
    """The class names and palette a detector draws with, as ``init_detector`` sets them.

    Classes come from the checkpoint's ``meta['dataset_meta']`` (or an older
    ``meta['CLASSES']``), else from the config's test dataset (its ``metainfo``);
    the palette from the config's test dataset if it has one, else from the
    checkpoint, else ``'random'``. ``init_detector`` without a checkpoint would use
    COCO's 80 classes instead, whatever the config says.
    """
    from mmdet.registry import DATASETS

    dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    dataset_cfg['lazy_init'] = True  # only the metainfo: no annotation file is read
    metainfo = DATASETS.build(dataset_cfg).metainfo
    recorded = checkpoint_meta.get('dataset_meta')
    if recorded:
        meta = {k.lower(): v for k, v in recorded.items()}
    elif checkpoint_meta.get('CLASSES'):
        meta = dict(classes=checkpoint_meta['CLASSES'])
    else:
        meta = dict(classes=metainfo['classes'])
    meta['palette'] = metainfo.get('palette') or meta.get('palette') or 'random'
    return meta


def load_detector(config: str, checkpoint: str, device: str = 'cpu') -> nn.Module:
    """MMDetection's ``init_detector``, with the checkpoint read once and loaded strictly.

    ``init_detector`` loads non-strictly; here a missing, unexpected or mis-shaped
    tensor is an error. The model is built as ``init_detector`` builds it (in the
    config's default scope, SyncBN turned into BN, ``model.cfg`` set), and its
    ``dataset_meta`` is set by :func:`detector_dataset_meta`.

    Raises:
        InputError: a missing or broken config or checkpoint, or one that does not fit.
    """
    from mmdet.registry import MODELS
    from mmengine.model.utils import revert_sync_batchnorm
    from mmengine.registry import init_default_scope

    ckpt = load_checkpoint_file(checkpoint)
    cfg = load_config(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    load_model_checkpoint(model, ckpt, checkpoint)
    model.dataset_meta = detector_dataset_meta(cfg, ckpt.get('meta') or {})
    model.cfg = cfg
    return model.to(device).eval()
