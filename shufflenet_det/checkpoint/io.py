"""Reading and writing checkpoint files: safely, completely, with errors that name the file."""
import os
import pickle
import re
from pathlib import Path

import torch

from ..fileio import atomic_open


class CheckpointFileError(ValueError):
    """A checkpoint file that is truncated, corrupt, or not a checkpoint at all."""


class UnsafeCheckpointError(CheckpointFileError):
    """A checkpoint holding a pickled object that safe loading does not allow."""


def atomic_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename it into place.

    An interrupted save leaves no partial file at ``path``.
    """
    with atomic_open(path, 'wb') as f:
        torch.save(obj, f)
    return Path(path)


def load_checkpoint_file(path: str | os.PathLike, map_location='cpu'):
    """``torch.load(path, weights_only=True)``, with errors that say what is wrong with the file.

    Only tensors, plain containers and the types allow-listed by
    :func:`~shufflenet_det.checkpoint.allow_mmengine_checkpoints` are unpickled;
    safe loading is never switched off.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnsafeCheckpointError: the file holds another pickled type (named in the message).
        CheckpointFileError: the file is a directory, empty, truncated, or not a
            PyTorch checkpoint.
    """
    path = str(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f'checkpoint file not found: {path}')
    if os.path.isdir(path):
        raise CheckpointFileError(f'{path} is a directory, not a checkpoint file')
    size = os.path.getsize(path)
    if size == 0:
        raise CheckpointFileError(f'{path} is empty (0 bytes), not a checkpoint; an '
                                  'interrupted copy or download leaves such files')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
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
        with open(path, 'rb') as f:
            head = f.read(4)
        reason = str(exc).split('. ')[0] or type(exc).__name__
        if head == b'PK\x03\x04' or head[:1] == b'\x80':  # torch's zip format, or a pickle
            raise CheckpointFileError(
                f'{path} ({size} bytes) is truncated or corrupt: {reason}. Checkpoints written '
                'by this project are renamed into place only when complete, so this file was '
                'cut short elsewhere (a copy, a download, a full disk)') from exc
        raise CheckpointFileError(
            f'{path} ({size} bytes) is not a PyTorch checkpoint: it starts with {head!r}, '
            f'neither a zip archive nor a pickle ({type(exc).__name__}: {reason})') from exc
