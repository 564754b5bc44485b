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

from .io import load_checkpoint_file

_SHOWN_KEYS = 8


def is_pretrained_cfg(init_cfg) -> bool:
    """Whether ``init_cfg`` is a single ``dict(type='Pretrained', ...)``."""
    return isinstance(init_cfg, Mapping) and init_cfg.get('type') in ('Pretrained',
                                                                      PretrainedInit)


def checkpoint_exists(path: str) -> bool:
    """True for an existing local file and for any URL-like (``scheme://``) path."""
    return '://' in str(path) or os.path.isfile(path)


def read_checkpoint(path: str, map_location: str = 'cpu') -> tuple[dict, dict]:
    """The state dict and ``meta`` of a checkpoint file (``meta`` is ``{}`` if absent).

    Accepts a bare state dict or a dict holding one under ``state_dict``.

    Local files are read by :func:`~shufflenet_det.checkpoint.io.load_checkpoint_file`
    (safe loading, errors naming the file); URLs and ``open-mmlab://``-style
    paths by MMEngine's loader.

    Raises:
        FileNotFoundError: ``path`` is a local path that does not exist.
        CheckpointFileError: the file is truncated, corrupt, not a checkpoint, or
            holds objects that safe loading refuses.
        ValueError: the file holds no state dict.
    """
    if '://' in str(path):
        ckpt = _load_checkpoint(path, map_location=map_location)
    else:
        ckpt = load_checkpoint_file(path, map_location)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, Mapping) else None
    if not isinstance(state, Mapping) or not all(
            isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f'{path} does not hold a state dict (a mapping of names to tensors)')
    meta = ckpt.get('meta') if 'state_dict' in ckpt else None
    return dict(state), dict(meta) if isinstance(meta, Mapping) else {}


def select_prefix(state: Mapping[str, torch.Tensor], prefix: Optional[str],
                  source: str) -> dict[str, torch.Tensor]:
    """Keys of ``state`` under ``prefix``, with the prefix removed.

    Raises:
        ValueError: nothing in ``state`` starts with ``prefix``.
    """
    if not prefix:
        return dict(state)
    sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not sub:
        tops = sorted({k.split('.', 1)[0] + '.' for k in state})
        raise ValueError(f'{source} has no keys starting with prefix {prefix!r}; '
                         f'its keys start with {tops[:_SHOWN_KEYS]}')
    return sub


def load_state_dict_from(path: str,
                         prefix: Optional[str] = None,
                         map_location: str = 'cpu') -> dict[str, torch.Tensor]:
    """Read a checkpoint's state dict, keeping only keys under ``prefix`` (stripped)."""
    return select_prefix(read_checkpoint(path, map_location)[0], prefix, path)


def _listing(keys: list[str]) -> str:
    more = f' ... (+{len(keys) - _SHOWN_KEYS} more)' if len(keys) > _SHOWN_KEYS else ''
    return ', '.join(keys[:_SHOWN_KEYS]) + more


def load_parts(parts: Mapping[str, nn.Module], state: Mapping[str, torch.Tensor],
               source: str, strict: bool = True) -> int:
    """Load one state dict into several modules, checked together before anything is copied.

    Each key goes to the part with the longest matching key prefix (``''`` takes the
    rest) with that prefix removed. Every part must receive exactly its own keys
    with their shapes, and every key must be used.

    Args:
        parts (Mapping[str, nn.Module]): Key prefix -> module.
        state (Mapping[str, Tensor]): The weights.
        source (str): Where ``state`` came from, for the error message.
        strict (bool): If False, load the tensors whose names and shapes match,
            and log what does not match as a warning instead of raising. For
            users who mean a partial load. Default: True.

    Returns:
        int: The number of tensors loaded.

    Raises:
        RuntimeError: (``strict=True``) listing missing keys, unused keys and
            shape mismatches; no module is modified.
    """
    prefixes = sorted(parts, key=len, reverse=True)
    routed = {p: {} for p in prefixes}
    unused = []
    for key, value in state.items():
        prefix = next((p for p in prefixes if key.startswith(p)), None)
        if prefix is None:
            unused.append(key)
        else:
            routed[prefix][key[len(prefix):]] = value
    missing, mismatched = [], []
    for prefix, module in parts.items():
        own = module.state_dict()
        given = routed[prefix]
        missing += [prefix + k for k in sorted(set(own) - set(given))]
        unused += [prefix + k for k in sorted(set(given) - set(own))]
        mismatched += [f'{prefix}{k}: checkpoint {tuple(given[k].shape)} vs model '
                       f'{tuple(own[k].shape)}' for k in sorted(set(own) & set(given))
                       if own[k].shape != given[k].shape]
    problems = [f'{len(keys)} {what}: {_listing(keys)}'
                for what, keys in (('missing keys', missing), ('unexpected keys', sorted(unused)),
                                   ('shape mismatches', mismatched)) if keys]
    names = ' + '.join(type(m).__name__ for m in parts.values())
    if problems and strict:
        raise RuntimeError(f'{source} does not match {names}; nothing was loaded. '
                           + '; '.join(problems) + '. Pass strict=False in the init_cfg '
                           'to load only the matching tensors.')
    loaded = 0
    for prefix, module in parts.items():
        own = module.state_dict()
        matching = {k: v for k, v in routed[prefix].items()
                    if k in own and own[k].shape == v.shape}
        module.load_state_dict(matching, strict=not problems)
        loaded += len(matching)
    if problems:
        print_log(f'partial load (strict=False) of {source} into {names}: loaded {loaded} '
                  'tensors; the rest keep their initialisation. ' + '; '.join(problems),
                  logger='current', level=30)
    return loaded


def load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``module`` only if keys and shapes match exactly.

    Raises:
        RuntimeError: listing missing keys, unexpected keys and shape
            mismatches. ``module`` is not modified.
    """
    load_parts({'': module}, state, source)


def init_from_pretrained(module: nn.Module, init_cfg: Mapping, logger: str = 'current') -> bool:
    """Initialise ``module`` from ``dict(type='Pretrained', checkpoint, prefix=None)`` strictly.

    With ``missing_ok=True`` in ``init_cfg``, a local checkpoint that does not
    exist is reported as a warning and nothing is loaded. With ``strict=False``,
    only the tensors whose names and shapes match are loaded, and the rest is
    listed in a warning.

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
    loaded = load_parts({'': module}, state, where, strict=init_cfg.get('strict', True))
    print_log(f'{type(module).__name__}: loaded {loaded} tensors from {where}', logger=logger)
    return True
