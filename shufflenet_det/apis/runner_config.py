"""Config handling shared by ``tools/train.py`` and ``tools/test.py``."""
import os.path as osp
from typing import Optional

from mmengine.config import Config

from ..datasets.layout import set_data_root


def prepare_config(config: str,
                   work_dir: Optional[str] = None,
                   cfg_options: Optional[dict] = None,
                   data_root: Optional[str] = None,
                   launcher: str = 'none') -> Config:
    """Load ``config`` and apply the command-line overrides the tools share.

    The work directory is, in order of preference: ``work_dir``, the config's
    ``work_dir``, ``./work_dirs/<config name>``. ``data_root`` is applied after
    ``cfg_options``, so it wins over a root set there.
    """
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    if data_root is not None:
        set_data_root(cfg, data_root)
    return cfg
