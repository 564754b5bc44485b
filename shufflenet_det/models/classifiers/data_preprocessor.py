"""Batch normalisation of classification images, done on the model's device."""
from typing import Sequence

import torch
from mmdet.registry import MODELS
from mmengine.model import BaseDataPreprocessor


@MODELS.register_module()
class ClsDataPreprocessor(BaseDataPreprocessor):
    """Move ``(images, labels)`` to the device and normalise the images.

    Images arrive as uint8 or float tensors in 0-255, (N, 3, H, W), RGB (the
    order torchvision decodes). Defaults are OpenMMLab's ImageNet statistics.

    Args:
        mean (Sequence[float]): Per-channel mean, 0-255 scale.
        std (Sequence[float]): Per-channel standard deviation, 0-255 scale.
        rgb_to_bgr (bool): Reverse the channel order first (for weights trained
            on BGR input, like Megvii's). Default: False.
    """

    def __init__(self,
                 mean: Sequence[float] = (123.675, 116.28, 103.53),
                 std: Sequence[float] = (58.395, 57.12, 57.375),
                 rgb_to_bgr: bool = False) -> None:
        super().__init__()
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f'mean and std need 3 values each, std positive; got {mean}, {std}')
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)
        self.rgb_to_bgr = rgb_to_bgr

    def input_convention(self) -> dict:
        """This normalisation in the fields of MMDetection's ``DetDataPreprocessor``.

        Detectors read images as BGR; ``bgr_to_rgb`` says whether they must reverse
        them to see what this classifier saw.
        """
        return dict(mean=[round(float(v), 4) for v in self.mean.flatten()],
                    std=[round(float(v), 4) for v in self.std.flatten()],
                    bgr_to_rgb=not self.rgb_to_bgr)

    def forward(self, data, training: bool = False):
        if isinstance(data, dict):
            images, labels = data['inputs'], data.get('data_samples')
        else:
            images, labels = data
        images = self.cast_data(images)
        if isinstance(images, (list, tuple)):
            images = torch.stack(list(images))
        if self.rgb_to_bgr:
            images = images.flip(1)
        images = (images.float() - self.mean) / self.std
        if labels is not None:
            labels = self.cast_data(torch.as_tensor(labels))
        return dict(inputs=images, data_samples=labels)
