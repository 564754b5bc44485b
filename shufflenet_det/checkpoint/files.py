"""Reading and writing checkpoint files: safely, completely, with errors that name the file.

Only tensors, plain containers and what MMEngine checkpoints hold (:data:`SAFE_GLOBALS`) are
unpickled: on torch >= 2.6 by ``torch.load(weights_only=True)`` allowing them for one load;
on older torch (2.1 has no list to extend) by Python's unpickler restricted as its
documentation recommends. MMEngine's ``HistoryBuffer`` pickles its statistics methods as
``builtins.getattr(HistoryBuffer, 'min')``: :func:`history_buffer_statistic` stands in for
that ``getattr``. Importing this changes none of torch's settings.
"""
import _codecs
import _compat_pickle
import builtins
import collections
import os
import pickle
import re
import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

from ..errors import InputError, InputFileNotFoundError
from ..fileio import atomic_open
from ..versions import release
from .digest import (ABSENT, MATCH, MISMATCH, check_tensor_digest, record_tensor_digest,
                     recorded_tensor_digest)

SAFE_TYPES = [
    HistoryBuffer, np.ndarray, np.dtype,
    # From NumPy's own pickles: NumPy 2 moved them from numpy.core to numpy._core.
    np.zeros(1).__reduce__()[0], np.float64(0).__reduce__()[0],
    *(type(np.dtype(t)) for t in (np.float16, np.float32, np.float64, np.int8, np.int16,
                                  np.int32, np.int64, np.uint8, np.bool_)),
]
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def history_buffer_statistic(obj, name: str):
    """``getattr`` as an unpickled checkpoint may call it: ``HistoryBuffer``'s statistics only."""
    if obj is HistoryBuffer and name in HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        'Weights only load failed. Unsupported global: GLOBAL builtins.getattr (a checkpoint '
        f'may only look up HistoryBuffer.{"/".join(HISTORY_BUFFER_STATISTICS)} through it, '
        f'not {getattr(obj, "__name__", type(obj).__qualname__)}.{name})')


# The types, and the getattr stand-in under the name a pickle calls it by.
SAFE_GLOBALS = [*SAFE_TYPES, (history_buffer_statistic, 'builtins.getattr')]
# The first torch whose allow-list takes (object, 'module.name') pairs for one load.
HAS_SAFE_GLOBALS = release(torch.__version__) >= (2, 6)


def restricted_pickle_module(safe_types) -> types.ModuleType:
    """A ``pickle_module`` for ``torch.load`` resolving only torch's weights-only globals,
    a few plain types torch 2.1's list lacks, and ``safe_types`` (objects, or
    ``(object, 'module.name')`` pairs as ``torch.serialization.add_safe_globals`` takes)."""
    allowed = dict(torch._weights_only_unpickler._get_allowed_globals())
    # MultiStepLR keeps its milestones in a Counter; protocol 2 writes bytes through
    # _codecs.encode.
    for obj in (collections.Counter, builtins.set, builtins.bytearray, builtins.complex,
                _codecs.encode):
        allowed[f'{obj.__module__}.{obj.__qualname__}'] = obj
    for item in safe_types:
        obj, name = item if isinstance(item, tuple) else (
            item, f'{item.__module__}.{item.__qualname__}')
        allowed[name] = obj
        # A file written with either NumPy major must load with the other.
        for prefix, alias in (('numpy._core.', 'numpy.core.'), ('numpy.core.', 'numpy._core.')):
            if name.startswith(prefix):
                allowed[alias + name[len(prefix):]] = obj

    class Unpickler(pickle.Unpickler):

        def find_class(self, module: str, name: str):
            # Protocol 2 spells Python 3's names the Python 2 way (__builtin__.set).
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
            if f'{module}.{name}' not in allowed:
                raise pickle.UnpicklingError(
                    f'Weights only load failed. Unsupported global: GLOBAL {module}.{name}')
            return allowed[f'{module}.{name}']

    module = types.ModuleType('shufflenet_det_restricted_pickle')  # torch reads its __name__
    module.Unpickler = Unpickler
    module.load = lambda file, **kwargs: Unpickler(file, **kwargs).load()
    return module


_RESTRICTED_PICKLE = None if HAS_SAFE_GLOBALS else restricted_pickle_module(SAFE_GLOBALS)
ZIP_MAGIC = b'PK\x03\x04'  # the first bytes of what torch.save writes


def allow_mmengine_checkpoints() -> None:
    """Let torch's own safe loader read MMEngine's checkpoints anywhere in this process, for
    a user's script (``DetInferencer(weights=...)``): it **changes process-wide state**.
    Does nothing on torch < 2.6, where :func:`mmengine_loads_safely` serves."""
    if HAS_SAFE_GLOBALS:
        torch.serialization.add_safe_globals(SAFE_GLOBALS)


def safe_torch_load(path, map_location='cpu'):
    """``torch.load`` that unpickles only tensors, plain containers and :data:`SAFE_GLOBALS`;
    anything else raises ``pickle.UnpicklingError('... Unsupported global: GLOBAL name')``."""
    if not HAS_SAFE_GLOBALS:
        return torch.load(path, map_location=map_location, weights_only=False,
                          pickle_module=_RESTRICTED_PICKLE)
    # Only what is missing: the context removes what it added, so a user's own
    # allow_mmengine_checkpoints() stays in force.
    present = set(torch.serialization.get_safe_globals())
    with torch.serialization.safe_globals([g for g in SAFE_GLOBALS if g not in present]):
        return torch.load(path, map_location=map_location, weights_only=True)


class CheckpointFileError(InputError, ValueError):
    """A checkpoint file that is truncated, corrupt, or not a checkpoint at all."""


class UnsafeCheckpointError(CheckpointFileError):
    """A checkpoint holding a pickled object that safe loading does not allow."""


def atomic_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename it into place; a
    checkpoint dict (with ``state_dict``) gets the digest of its tensors in its ``meta``."""
    if isinstance(obj, Mapping) and 'state_dict' in obj:
        obj = record_tensor_digest(dict(obj))
    with atomic_open(path, 'wb') as f:
        torch.save(obj, f)
    return Path(path)


def _unpickle(path: str, map_location):
    """:func:`safe_torch_load` of ``path``, with errors that say what is wrong with the file."""
    if not os.path.exists(path):
        raise InputFileNotFoundError(f'checkpoint file not found: {path}')
    if os.path.isdir(path):
        raise CheckpointFileError(f'{path} is a directory, not a checkpoint file')
    size = os.path.getsize(path)
    if size == 0:
        raise CheckpointFileError(f'{path} is empty (0 bytes), not a checkpoint; an '
                                  'interrupted copy or download leaves such files')
    with open(path, 'rb') as f:
        head = f.read(4)
    # torch.save writes a zip archive, torch < 1.6 a bare pickle. Checked before
    # torch.load, which reports any non-pickle as an unsafe pickle.
    if not head.startswith((ZIP_MAGIC, b'\x80')):
        raise CheckpointFileError(
            f'{path} ({size} bytes) is not a PyTorch checkpoint: it starts with {head!r}, '
            'neither a zip archive (what torch.save writes) nor a pickle')
    try:
        return safe_torch_load(path, map_location)
    except pickle.UnpicklingError as exc:
        found = re.search(r'Unsupported global: GLOBAL (\S+)', str(exc))
        if found or 'Weights only load failed' in str(exc):
            what = f'an object of type {found.group(1)}' if found else 'a pickled object'
            raise UnsafeCheckpointError(
                f'{path} was refused: it contains {what}, which safe loading '
                '(torch.load with weights_only=True) does not allow because unpickling it '
                'could run arbitrary code. Checkpoints written by MMEngine and this project '
                'load safely; if you trust where this file came from, load it once with '
                'torch.load(..., weights_only=False) yourself and save only its tensors.'
            ) from exc
        raise CheckpointFileError(f'{path} is not a PyTorch checkpoint ({exc})') from exc
    except Exception as exc:  # torch's errors differ by where the file breaks off
        reason = str(exc).split('. ')[0] or type(exc).__name__
        raise CheckpointFileError(
            f'{path} ({size} bytes) is truncated or corrupt: {reason}. Checkpoints written '
            'by this project are renamed into place only when complete, so this file was '
            'cut short elsewhere (a copy, a download, a full disk)') from exc


_REPORTED_UNVERIFIED: set[str] = set()


def verify_tensor_digest(ckpt, source: str) -> None:
    """Refuse tensors that differ from their recorded digest; log once per file without one."""
    status = check_tensor_digest(ckpt)
    if status == MISMATCH:
        raise CheckpointFileError(
            f'{source} is corrupt: its tensors do not match the digest recorded when it was '
            "written (meta['tensor_digest']), so some of its bytes changed since on a disk, "
            'in a copy or a download. Use another copy of the file')
    if status != MATCH and source not in _REPORTED_UNVERIFIED:
        _REPORTED_UNVERIFIED.add(source)
        why = ('records no tensor digest (it was written by another program, e.g. Megvii, '
               'OpenMMLab or MMDetection)') if status == ABSENT else (
            f"records its tensor digest with {recorded_tensor_digest(ckpt).get('algorithm')!r}, "
            'which this version cannot compute')
        print_log(f'{source} {why}: its content is loaded unverified', logger='current')


def load_checkpoint_file(path: str | os.PathLike, map_location='cpu'):
    """Read ``path`` safely and check its tensors against their recorded digest.

    Raises:
        InputFileNotFoundError: ``path`` does not exist.
        UnsafeCheckpointError: the file holds another pickled type (named in the message).
        CheckpointFileError: the file is a directory, empty, truncated, not a PyTorch
            checkpoint, or its tensors do not match their recorded digest.
    """
    ckpt = _unpickle(str(path), map_location)
    verify_tensor_digest(ckpt, str(path))
    return ckpt


def checkpoint_exists(path: str) -> bool:
    """True for an existing local path and for any URL-like (``scheme://``) path."""
    return '://' in str(path) or os.path.exists(path)


def read_checkpoint(path: str, map_location: str = 'cpu') -> tuple[dict, dict]:
    """The state dict and ``meta`` (``{}`` if absent) of a checkpoint file (read by
    :func:`load_checkpoint_file`) or URL (by MMEngine's loader).

    Raises:
        InputFileNotFoundError: ``path`` is a local path that does not exist.
        CheckpointFileError: the file cannot be read safely, or holds no state dict.
    """
    if '://' in str(path):
        ckpt = _load_checkpoint(path, map_location=map_location)
        verify_tensor_digest(ckpt, str(path))
    else:
        ckpt = load_checkpoint_file(path, map_location)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, Mapping) else None
    if not isinstance(state, Mapping) or not all(
            isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointFileError(
            f'{path} does not hold a state dict (a mapping of names to tensors)')
    meta = ckpt.get('meta') if 'state_dict' in ckpt else None
    return dict(state), dict(meta) if isinstance(meta, Mapping) else {}


@contextmanager
def mmengine_loads_safely() -> Iterator[None]:
    """Route MMEngine's local checkpoint reads (``load_from``, ``--resume``, ``Pretrained``),
    a bare ``torch.load``, through :func:`load_checkpoint_file`; the tools run inside this."""
    previous = CheckpointLoader._schemes.get('')  # '' is MMEngine's prefix for local paths
    CheckpointLoader.register_scheme(
        prefixes='', force=True, loader=lambda filename, map_location=None:
        load_checkpoint_file(os.path.expanduser(filename), map_location))
    try:
        yield
    finally:
        if previous is not None:
            CheckpointLoader.register_scheme(prefixes='', loader=previous, force=True)
