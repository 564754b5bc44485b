"""ImageNet in its standard folder layout, read with torchvision under MMEngine.

``data/imagenet/train/<wnid>/*.JPEG`` and ``data/imagenet/val/<wnid>/*.JPEG``,
one folder per class, as ``torchvision.datasets.ImageFolder`` reads them. The
transforms are ``torchvision.transforms.v2`` classes named in the config; every
sample comes out as a ``(uint8 CHW tensor, label)`` pair, and the model's data
preprocessor normalises whole batches on its device.
"""
import os
import os.path as osp
from typing import Optional, Sequence

import torch
from mmdet.registry import DATASETS
from torch.utils.data import Dataset
from torchvision import datasets
from torchvision.transforms import v2

from ..errors import ConfigError, InputFileNotFoundError
from ..images import IMAGE_EXTENSIONS


def build_transforms(pipeline: Sequence[dict]) -> v2.Compose:
    """``v2.Compose`` of ``[dict(type='RandomResizedCrop', size=224), ...]``, ending in a
    uint8 tensor image.

    Raises:
        ConfigError: a ``type`` that ``torchvision.transforms.v2`` does not have.
    """
    steps = []
    for step in pipeline:
        step = dict(step)
        name = step.pop('type')
        cls = getattr(v2, name, None)
        if cls is None or not isinstance(cls, type):
            raise ConfigError(f'{name!r} is not a torchvision.transforms.v2 transform')
        steps.append(cls(**step))
    steps += [v2.ToImage(), v2.ToDtype(torch.uint8, scale=True)]
    return v2.Compose(steps)


@DATASETS.register_module()
class ImageNetFolder(Dataset):
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
            raise InputFileNotFoundError(f'image folder not found: {root} (expected one '
                                    'sub-folder of images per class, e.g. '
                                    f'{osp.join(root, "n01440764")}/*.JPEG)')
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
        self.root = root
        self.folder = datasets.ImageFolder(root, transform=build_transforms(pipeline))
        self.metainfo = dict(classes=tuple(self.folder.classes))

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.folder[index]
