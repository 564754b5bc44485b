"""Reading config files, with errors that name the file."""
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.utils import get_installed_path

from .errors import ConfigError, InputFileNotFoundError


def config_path(config: str) -> str:
    """The file behind ``config``, which may name a package's config as in ``_base_``:
    ``'mmdet::faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py'``.

    Raises:
        InputFileNotFoundError: the package is not installed.
    """
    if '::' not in config:
        return config
    package, relative = config.split('::', 1)
    try:
        root = get_installed_path(package)
    except Exception as exc:  # importlib's and pkg_resources' lookups raise different types
        raise InputFileNotFoundError(f'config {config}: package {package!r} is not '
                                     'installed') from exc
    return osp.join(root, '.mim', 'configs', relative)


def load_config(config: str, cfg_options: Optional[dict] = None) -> Config:
    """``Config.fromfile`` with ``cfg_options`` merged; ``config`` may be a path or a
    package's config (``mmdet::...``, see :func:`config_path`).

    Raises:
        InputFileNotFoundError: ``config`` does not exist.
        ConfigError: ``config`` is not a readable config file.
    """
    path = config_path(config)
    if not osp.isfile(path):
        raise InputFileNotFoundError(f'config file not found: {config}')
    try:
        cfg = Config.fromfile(path)
    except (SyntaxError, OSError, KeyError, TypeError, ValueError, NameError,
            ImportError) as exc:
        raise ConfigError(f'cannot read config {config}: {type(exc).__name__}: {exc}') from exc
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg
