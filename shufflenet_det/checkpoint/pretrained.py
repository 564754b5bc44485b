"""Strict loading of pretrained weights.

MMEngine's ``Pretrained`` initialiser loads with ``strict=False`` and only logs
what it skipped, and ``nn.Module.load_state_dict`` may copy part of a checkpoint
before it raises on a shape mismatch. Here every key and shape is checked first;
a module is either loaded completely or left untouched with an error that names
what does not match.
"""
import os
from collections.abc import Mapping
from typing import Optional

import torch
from mmengine.logging import print_log
from mmengine.model.weight_init import PretrainedInit
from mmengine.runner.checkpoint import _load_checkpoint
from torch import nn

_SHOWN_KEYS = 8


def is_pretrained_cfg(init_cfg) -> bool:
    """Whether ``init_cfg`` is a single ``dict(type='Pretrained', ...)``."""
    return isinstance(init_cfg, Mapping) and init_cfg.get('type') in ('Pretrained',
                                                                      PretrainedInit)


def checkpoint_exists(path: str) -> bool:
    """True for an existing local file and for any URL-like (``scheme://``) path."""
    return '://' in str(path) or os.path.isfile(path)


def load_state_dict_from(path: str,
                         prefix: Optional[str] = None,
                         map_location: str = 'cpu') -> dict[str, torch.Tensor]:
    """Read a checkpoint's state dict, keeping only keys under ``prefix`` (stripped).

    Accepts a bare state dict or a dict holding one under ``state_dict``.

    Raises:
        FileNotFoundError: ``path`` is a local path that does not exist.
        ValueError: the file holds no state dict, or nothing under ``prefix``.
    """
    if not checkpoint_exists(path):
        raise FileNotFoundError(f'checkpoint file not found: {path}')
    ckpt = _load_checkpoint(path, map_location=map_location)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, Mapping) else None
    if not isinstance(state, Mapping) or not all(
            isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f'{path} does not hold a state dict (a mapping of names to tensors)')
    if not prefix:
        return dict(state)
    sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not sub:
        tops = sorted({k.split('.', 1)[0] + '.' for k in state})
        raise ValueError(f'{path} has no keys starting with prefix {prefix!r}; '
                         f'its keys start with {tops[:_SHOWN_KEYS]}')
    return sub


def _listing(keys: list[str]) -> str:
    more = f' ... (+{len(keys) - _SHOWN_KEYS} more)' if len(keys) > _SHOWN_KEYS else ''
    return ', '.join(keys[:_SHOWN_KEYS]) + more


def load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``module`` only if keys and shapes match exactly.

    Args:
        module (nn.Module): Module to load into.
        state (Mapping[str, Tensor]): The weights.
        source (str): Where ``state`` came from, for the error message.

    Raises:
        RuntimeError: listing missing keys, unexpected keys and shape
            mismatches. ``module`` is not modified.
    """
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
                        for k in set(own) & set(state) if own[k].shape != state[k].shape)
    problems = [f'{len(keys)} {what}: {_listing(keys)}'
                for what, keys in (('missing keys', missing), ('unexpected keys', unexpected),
                                   ('shape mismatches', mismatched)) if keys]
    if problems:
        raise RuntimeError(f'{source} does not match {type(module).__name__}; nothing was '
                           f'loaded. ' + '; '.join(problems))
    module.load_state_dict(state, strict=True)


def init_from_pretrained(module: nn.Module, init_cfg: Mapping, logger: str = 'current') -> bool:
    """Initialise ``module`` from ``dict(type='Pretrained', checkpoint, prefix=None)`` strictly.

    With ``missing_ok=True`` in ``init_cfg``, a local checkpoint that does not
    exist is reported as a warning and nothing is loaded.

    Returns:
        bool: True if weights were loaded, False if the file was missing and
        ``missing_ok`` allowed it.
    """
    path = init_cfg['checkpoint']
    prefix = init_cfg.get('prefix')
    if not checkpoint_exists(path) and init_cfg.get('missing_ok', False):
        print_log(f'{type(module).__name__}: pretrained checkpoint {path} not found; '
                  'training from scratch with the default initialisation. See the README '
                  'section "Pretrained weights" for how to get it.',
                  logger=logger, level=30)
        return False
    state = load_state_dict_from(path, prefix, init_cfg.get('map_location', 'cpu'))
    where = f'{path}' + (f' (prefix {prefix!r})' if prefix else '')
    load_strict(module, state, where)
    print_log(f'{type(module).__name__}: loaded {len(state)} tensors from {where}',
              logger=logger)
    return True
