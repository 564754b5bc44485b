"""A detector built from its config with a checkpoint loaded strictly, read once."""
import warnings

from torch import nn

from ..config import load_config
from .io import load_checkpoint_file
from .pretrained import load_model_checkpoint


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
    with warnings.catch_warnings():
        # Without a checkpoint init_detector warns that it uses COCO's classes; the
        # checkpoint's are set below.
        warnings.filterwarnings('ignore', message='checkpoint is None')
        model = init_detector(load_config(config), None, device='cpu')
    load_model_checkpoint(model, ckpt, checkpoint)
    dataset_meta = (ckpt.get('meta') or {}).get('dataset_meta')
    if dataset_meta:
        model.dataset_meta = {k.lower(): v for k, v in dataset_meta.items()}
    return model.to(device).eval()
