"""``tools/demo.py``: a detector from a config and a checkpoint, run on one image and drawn."""
from typing import Callable

from torch import nn

from ..checkpoint import load_checkpoint_file, load_model_checkpoint
from ..visualization import draw_detections
from ..config import load_config


def load_detector(config: str, checkpoint: str, device: str = 'cpu') -> nn.Module:
    """MMDetection's ``init_detector``, with the checkpoint read once and loaded strictly.

    ``init_detector`` loads non-strictly; here a missing, unexpected or mis-shaped
    tensor is an error. The class names come from the checkpoint's
    ``meta['dataset_meta']`` when it records them, as in ``init_detector``.

    Raises:
        InputError: a missing or broken config or checkpoint, or one that does not fit.
    """
    from mmdet.apis import init_detector

    ckpt = load_checkpoint_file(checkpoint)
    model = init_detector(load_config(config), None, device='cpu')
    load_model_checkpoint(model, ckpt, checkpoint)
    dataset_meta = (ckpt.get('meta') or {}).get('dataset_meta')
    if dataset_meta:
        model.dataset_meta = {k.lower(): v for k, v in dataset_meta.items()}
    return model.to(device).eval()


def demo(image: str, config: str, checkpoint: str, out_file: str, score_thr: float = 0.3,
         device: str = 'cpu', progress: Callable[[str], None] = print) -> int:
    """Detect objects in ``image`` and draw those scoring ``score_thr`` or more into ``out_file``.

    Returns:
        int: How many detections were drawn.
    """
    model = load_detector(config, checkpoint, device)
    drawn = draw_detections(model, image, out_file, score_thr)
    progress(f'{drawn} detections with score >= {score_thr} drawn to {out_file}')
    return drawn
