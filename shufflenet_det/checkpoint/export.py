"""Backbone-only checkpoints from classifier (pretraining) checkpoints."""
from typing import Callable

from ..fileio import check_writable
from .files import atomic_save, read_checkpoint
from .pretrained import select_prefix

BACKBONE_PREFIX = 'backbone.'


def export_backbone(src: str, dst: str, progress: Callable[[str], None] = print) -> dict:
    """Write ``src``'s ``backbone.*`` tensors, its architecture and input convention, to ``dst``.

    Optimizer state, message hub and the classifier head are left out. Keys keep
    their ``backbone.`` prefix, so detectors load either file the same way.

    Returns:
        dict: ``tensors`` (how many were written) and the ``meta`` stored.

    Raises:
        OutputPathError: ``dst`` cannot be written (checked before ``src`` is read).
        CheckpointMismatchError: ``src`` holds no ``backbone.*`` tensors.
    """
    check_writable(dst, 'DST')
    state, meta = read_checkpoint(src)
    backbone = select_prefix(state, BACKBONE_PREFIX, src)
    out_meta = dict(exported_from=str(src))
    for key in ('arch', 'input_convention', 'epoch', 'iter'):
        if key in meta:
            out_meta[key] = meta[key]
    atomic_save(dict(state_dict={BACKBONE_PREFIX + k: v for k, v in backbone.items()},
                     meta=out_meta), dst)
    progress(f'wrote {len(backbone)} backbone tensors to {dst}; input convention: '
             f'{out_meta.get("input_convention", "not recorded")}')
    return dict(tensors=len(backbone), meta=out_meta)
