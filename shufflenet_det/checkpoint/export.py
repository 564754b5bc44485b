"""Backbone-only checkpoints from classifier (pretraining) checkpoints."""
from .io import atomic_save
from .pretrained import read_checkpoint


def export_backbone(src: str, dst: str) -> dict:
    """Write ``src``'s ``backbone.*`` tensors, and its input convention, to ``dst``.

    Optimizer state, message hub and the classifier head are left out. Keys keep
    their ``backbone.`` prefix, so detectors load either file the same way.

    Returns:
        dict: ``tensors`` (how many were written) and the ``meta`` stored.

    Raises:
        ValueError: ``src`` holds no ``backbone.*`` tensors.
    """
    state, meta = read_checkpoint(src)
    backbone = {k: v for k, v in state.items() if k.startswith('backbone.')}
    if not backbone:
        tops = sorted({k.split('.', 1)[0] for k in state})
        raise ValueError(f'{src} holds no backbone.* tensors (its keys start with {tops[:8]})')
    out_meta = dict(exported_from=str(src))
    for key in ('input_convention', 'epoch', 'iter'):
        if key in meta:
            out_meta[key] = meta[key]
    atomic_save(dict(state_dict=backbone, meta=out_meta), dst)
    return dict(tensors=len(backbone), meta=out_meta)
