"""A digest of a checkpoint's tensors, recorded in its ``meta`` and checked when it is read.

A zip archive written by ``torch.save`` stores each tensor's bytes uncompressed and
unchecked: a flipped bit on a disk, in a copy or a download loads without complaint
and computes something else. Every checkpoint this project writes records
``meta['tensor_digest'] = {'algorithm': ..., 'value': ...}`` over the name, dtype,
shape and bytes of every tensor outside ``meta`` (the state dict, and in a training
checkpoint the optimizer state and the message hub's generator states), and the
loaders compare it (:func:`check_tensor_digest`).

The digest is CRC-32 (``zlib.crc32``, the checksum zip archives use), chained over the
tensors in name order. It finds every error of up to 32 consecutive bits for certain
and other damage with a chance of 1 - 2**-32, at about twice the speed of ``hashlib``'s
BLAKE2b. It guards against accidents, not against someone who rewrites the file and its
``meta``.
"""
import zlib
from collections.abc import Iterator, Mapping
from typing import Optional

import torch

DIGEST_KEY = 'tensor_digest'
ALGORITHM = 'crc32'
# What check_tensor_digest reports.
MATCH, MISMATCH, ABSENT, UNKNOWN_ALGORITHM = 'match', 'mismatch', 'absent', 'unknown algorithm'


def _named_tensors(obj, path: str) -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(obj, torch.Tensor):
        yield path, obj
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            yield from _named_tensors(value, f'{path}/{key}')
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            yield from _named_tensors(value, f'{path}/{index}')


def named_tensors(ckpt: Mapping) -> list[tuple[str, torch.Tensor]]:
    """Every tensor of ``ckpt`` outside ``meta``, named by its path, in name order."""
    found = []
    for key, value in ckpt.items():
        if key != 'meta':
            found += _named_tensors(value, str(key))
    return sorted(found, key=lambda item: item[0])


def _tensor_bytes(tensor: torch.Tensor) -> memoryview:
    """The tensor's elements as bytes (any dtype, bfloat16 included)."""
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy())


def compute_tensor_digest(ckpt: Mapping) -> dict:
    """``{'algorithm': 'crc32', 'value': '8 hex digits'}`` over the tensors of ``ckpt``.

    A bare state dict (names to tensors) is digested as it is; a checkpoint dict
    over every tensor outside its ``meta``.
    """
    crc = 0
    for name, tensor in named_tensors(ckpt):
        header = f'{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0'
        crc = zlib.crc32(header.encode(), crc)
        if tensor.layout == torch.strided:  # sparse tensors do not occur in checkpoints
            crc = zlib.crc32(_tensor_bytes(tensor), crc)
    return dict(algorithm=ALGORITHM, value=f'{crc:08x}')


def record_tensor_digest(ckpt: dict) -> dict:
    """Store the digest of ``ckpt``'s tensors in ``ckpt['meta']`` (created if absent).

    ``ckpt`` must be a checkpoint dict (``state_dict``, ``meta``, ...), not a bare
    state dict, because the digest lives in ``meta``. ``meta`` is replaced by a copy,
    so a dict the caller passed in as ``meta`` is not changed.

    Returns:
        dict: ``ckpt``.
    """
    meta = dict(ckpt.get('meta') or {})
    meta.pop(DIGEST_KEY, None)
    ckpt['meta'] = meta
    meta[DIGEST_KEY] = compute_tensor_digest(ckpt)
    return ckpt


def recorded_tensor_digest(ckpt) -> Optional[Mapping]:
    """The digest ``ckpt['meta']`` records, or None (a file another program wrote)."""
    meta = ckpt.get('meta') if isinstance(ckpt, Mapping) else None
    recorded = meta.get(DIGEST_KEY) if isinstance(meta, Mapping) else None
    return recorded if isinstance(recorded, Mapping) else None


def check_tensor_digest(ckpt) -> str:
    """Compare ``ckpt``'s tensors with the digest its ``meta`` records.

    Returns:
        str: :data:`MATCH`, :data:`MISMATCH`, :data:`ABSENT` (nothing recorded: a file
        written by other programs, e.g. Megvii's, OpenMMLab's or MMDetection's) or
        :data:`UNKNOWN_ALGORITHM` (recorded with a hash this version does not know).
    """
    recorded = recorded_tensor_digest(ckpt)
    if recorded is None:
        return ABSENT
    if recorded.get('algorithm') != ALGORITHM:
        return UNKNOWN_ALGORITHM
    return MATCH if compute_tensor_digest(ckpt)['value'] == recorded.get('value') else MISMATCH
