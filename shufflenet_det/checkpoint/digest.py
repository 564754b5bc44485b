"""A digest of a checkpoint's tensors, recorded in its ``meta`` and checked when it is read.

``torch.save`` leaves tensor bytes unchecked, so a flipped bit loads without complaint. Every
checkpoint this project writes records ``meta['tensor_digest']``: CRC-32 chained, in name
order, over the name, dtype, shape and bytes of every tensor outside ``meta``. It guards
against accidents, not against someone who rewrites the file and its ``meta``.
"""
import zlib
from collections.abc import Mapping
from typing import Optional

import torch

DIGEST_KEY = 'tensor_digest'
ALGORITHM = 'crc32'
# What check_tensor_digest reports.
MATCH, MISMATCH, ABSENT, UNKNOWN_ALGORITHM = 'match', 'mismatch', 'absent', 'unknown algorithm'


def _named_tensors(obj, path: str):
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
    return sorted((item for key, value in ckpt.items() if key != 'meta'
                   for item in _named_tensors(value, str(key))), key=lambda item: item[0])


def compute_tensor_digest(ckpt: Mapping) -> dict:
    """``{'algorithm': 'crc32', 'value': '8 hex digits'}`` over the tensors outside ``meta``."""
    crc = 0
    for name, tensor in named_tensors(ckpt):
        crc = zlib.crc32(f'{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0'.encode(), crc)
        if tensor.layout == torch.strided:  # sparse tensors do not occur in checkpoints
            flat = tensor.detach().cpu().contiguous().reshape(-1)
            crc = zlib.crc32(memoryview(flat.view(torch.uint8).numpy()), crc)
    return dict(algorithm=ALGORITHM, value=f'{crc:08x}')


def record_tensor_digest(ckpt: dict) -> dict:
    """Store the digest of ``ckpt``'s tensors in a copy of ``ckpt['meta']``; returns ``ckpt``."""
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
    """:data:`MATCH`, :data:`MISMATCH`, :data:`ABSENT` or :data:`UNKNOWN_ALGORITHM`."""
    recorded = recorded_tensor_digest(ckpt)
    if recorded is None:
        return ABSENT
    if recorded.get('algorithm') != ALGORITHM:
        return UNKNOWN_ALGORITHM
    return MATCH if compute_tensor_digest(ckpt)['value'] == recorded.get('value') else MISMATCH
