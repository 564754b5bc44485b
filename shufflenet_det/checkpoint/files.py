"""Reading and writing checkpoint files: safely, completely, with errors that name the file."""
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import _load_checkpoint

from ..errors import InputError, InputFileNotFoundError
from ..fileio import atomic_open
from .digest import (ABSENT, MATCH, MISMATCH, check_tensor_digest, record_tensor_digest,
                     recorded_tensor_digest)
from .safe_globals import safe_torch_load

# torch.save writes a zip archive; files of torch < 1.6 and bare pickles start with the
# pickle protocol opcode.
_ZIP_MAGIC = b'PK\x03\x04'
_PICKLE_MAGIC = b'\x80'


class CheckpointFileError(InputError, ValueError):
    """A checkpoint file that is truncated, corrupt, or not a checkpoint at all."""


class UnsafeCheckpointError(CheckpointFileError):
    """A checkpoint holding a pickled object that safe loading does not allow."""


def atomic_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename it into place.

    An interrupted save leaves no partial file at ``path``. A checkpoint dict (one
    holding ``state_dict``) gets the digest of its tensors in ``meta['tensor_digest']``
    (:mod:`~shufflenet_det.checkpoint.digest`), which :func:`load_checkpoint_file`
    checks; ``obj`` itself is not changed.
    """
    if isinstance(obj, Mapping) and 'state_dict' in obj:
        obj = record_tensor_digest(dict(obj))
    with atomic_open(path, 'wb') as f:
        torch.save(obj, f)
    return Path(path)


def _unpickle_checkpoint_file(path: str | os.PathLike, map_location='cpu'):
    """Safe ``torch.load`` of ``path``, with errors that say what is wrong with the file.

    Only tensors, plain containers and MMEngine's checkpoint types are unpickled, on
    every supported torch (:func:`~shufflenet_det.checkpoint.safe_globals.safe_torch_load`);
    safe loading is never switched off.

    Raises:
        InputFileNotFoundError: ``path`` does not exist.
        UnsafeCheckpointError: the file holds another pickled type (named in the message).
        CheckpointFileError: the file is a directory, empty, truncated, or not a
            PyTorch checkpoint.
    """
    path = str(path)
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
    if not head.startswith((_ZIP_MAGIC, _PICKLE_MAGIC)):
        # Checked before torch.load, which reports any non-pickle as an unsafe pickle.
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
    """Check a loaded checkpoint's tensors against the digest recorded when it was written.

    A file without a digest (Megvii's, OpenMMLab's, MMDetection's) passes, with one log
    line per file saying that its content could not be verified.

    Raises:
        CheckpointFileError: the tensors differ from the recorded digest.
    """
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
    """Read ``path`` safely (:func:`_unpickle_checkpoint_file`) and verify its content.

    Only tensors, plain containers and MMEngine's checkpoint types are unpickled, and
    the tensors are checked against the digest this project records when it writes
    a checkpoint (:func:`verify_tensor_digest`).

    Raises:
        InputFileNotFoundError: ``path`` does not exist.
        UnsafeCheckpointError: the file holds another pickled type (named in the message).
        CheckpointFileError: the file is a directory, empty, truncated, not a PyTorch
            checkpoint, or its tensors do not match their recorded digest.
    """
    ckpt = _unpickle_checkpoint_file(path, map_location)
    verify_tensor_digest(ckpt, str(path))
    return ckpt


def checkpoint_exists(path: str) -> bool:
    """True for an existing local path and for any URL-like (``scheme://``) path."""
    return '://' in str(path) or os.path.exists(path)


def read_checkpoint(path: str, map_location: str = 'cpu') -> tuple[dict, dict]:
    """The state dict and ``meta`` of a checkpoint file (``meta`` is ``{}`` if absent).

    Accepts a bare state dict or a dict holding one under ``state_dict``. Local files
    are read by :func:`~shufflenet_det.checkpoint.files.load_checkpoint_file` (safe
    loading, errors naming the file); URLs and ``open-mmlab://``-style paths by
    MMEngine's loader. Every tool reads a checkpoint through this, once.

    Raises:
        InputFileNotFoundError: ``path`` is a local path that does not exist.
        CheckpointFileError: the file is truncated, corrupt, not a checkpoint, holds
            objects that safe loading refuses, or holds no state dict.
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
