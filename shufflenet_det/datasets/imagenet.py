"""ImageNet's folder layout (``train/<wnid>/*.JPEG``), read with torchvision under MMEngine:
``(uint8 CHW tensor, label)`` samples, normalised in batches by the model's preprocessor."""
import os
import os.path as osp
from typing import Optional, Sequence

import torch
from mmdet.registry import DATASETS
from torchvision import datasets
from torchvision.transforms import v2

from ..errors import ConfigError, InputFileNotFoundError
from ..images import IMAGE_EXTENSIONS


def build_transforms(pipeline: Sequence[dict]) -> v2.Compose:
    """``v2.Compose`` of ``[dict(type='RandomResizedCrop', size=224), ...]``, then a uint8 tensor.

    Raises:
        ConfigError: a ``type`` that ``torchvision.transforms.v2`` does not have.
    """
    steps = []
    for step in pipeline:
        step = dict(step)
        name = step.pop('type')
        cls = getattr(v2, name, None)
        if not isinstance(cls, type):
            raise ConfigError(f'{name!r} is not a torchvision.transforms.v2 transform')
        steps.append(cls(**step))
    steps += [v2.ToImage(), v2.ToDtype(torch.uint8, scale=True)]
    return v2.Compose(steps)


@DATASETS.register_module()
class ImageNetFolder(datasets.ImageFolder):
    """A class-per-folder image dataset (ImageNet's layout) for MMEngine's Runner.

    Args:
        data_root (str): Dataset root, e.g. ``'data/imagenet/'``.
        data_prefix (dict): ``dict(img='train/')``: the split's folder under
            ``data_root``.
        pipeline (Sequence[dict]): ``torchvision.transforms.v2`` transforms by
            name and arguments.
        classes (Sequence[str], optional): Expected class folders; the split
            must have exactly these. Default: whatever folders it has.
    """

    def __init__(self, data_root: str, data_prefix: dict, pipeline: Sequence[dict],
                 classes: Optional[Sequence[str]] = None) -> None:
        root = osp.join(data_root, data_prefix['img'])
        if not osp.isdir(root):
            raise InputFileNotFoundError(
                f'image folder not found: {root} (expected one sub-folder of images per '
                f'class, e.g. {osp.join(root, "n01440764")}/*.JPEG)')
        found = sorted(e.name for e in os.scandir(root) if e.is_dir())
        if not found:
            raise InputFileNotFoundError(f'{root} has no class folders')
        if classes is not None and list(classes) != found:
            missing = sorted(set(classes) - set(found))
            extra = sorted(set(found) - set(classes))
            raise ConfigError(f'{root} does not hold the expected classes: missing {missing[:5]}, '
                             f'unexpected {extra[:5]}')
        for name in found:
            folder = osp.join(root, name)
            if not any(f.lower().endswith(IMAGE_EXTENSIONS) for f in os.listdir(folder)):
                raise InputFileNotFoundError(f'class folder {folder} has no images '
                                             f'(extensions {", ".join(IMAGE_EXTENSIONS)})')
        super().__init__(root, transform=build_transforms(pipeline))
        self.metainfo = dict(classes=tuple(self.classes))
