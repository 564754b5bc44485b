"""Reading config files, with errors that name the file."""
import os.path as osp
from typing import Optional

from mmengine.config import Config

from .errors import ConfigError, InputFileNotFoundError


def load_config(config: str, cfg_options: Optional[dict] = None) -> Config:
    """``Config.fromfile`` with ``cfg_options`` merged.

    Raises:
        InputFileNotFoundError: ``config`` does not exist.
        ConfigError: ``config`` is not a readable config file.
    """
    if not osp.isfile(config):
        raise InputFileNotFoundError(f'config file not found: {config}')
    try:
        cfg = Config.fromfile(config)
    except (SyntaxError, OSError, KeyError, TypeError, ValueError, NameError,
            ImportError) as exc:
        raise ConfigError(f'cannot read config {config}: {type(exc).__name__}: {exc}') from exc
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg
