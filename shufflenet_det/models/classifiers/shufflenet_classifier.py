"""The ImageNet classifier that pretrains ShuffleNet V1 backbones, and its preprocessor.

Parameter names are OpenMMLab's (``backbone.*``, ``head.fc.*``), so that its checkpoints
and this project's load into each other and into detectors with ``prefix='backbone.'``.
"""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseDataPreprocessor, BaseModel
from torch import Tensor


@MODELS.register_module()
class ClsDataPreprocessor(BaseDataPreprocessor):
    """Move ``(images, labels)`` to the device and normalise the images.

    Images arrive as (N, 3, H, W) RGB tensors in 0-255.

    Args:
        mean (Sequence[float]): Per-channel mean, 0-255 scale (default: ImageNet's).
        std (Sequence[float]): Per-channel standard deviation, 0-255 scale.
        rgb_to_bgr (bool): Reverse the channels first, for weights trained on BGR
            (Megvii's). Default: False.
    """

    def __init__(self,
                 mean: Sequence[float] = (123.675, 116.28, 103.53),
                 std: Sequence[float] = (58.395, 57.12, 57.375),
                 rgb_to_bgr: bool = False) -> None:
        super().__init__()
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f'mean and std need 3 values each, std positive; got {mean}, {std}')
        for name, value in (('mean', mean), ('std', std)):
            self.register_buffer(name, torch.tensor(value, dtype=torch.float32).view(1, 3, 1, 1),
                                 persistent=False)
        self.rgb_to_bgr = rgb_to_bgr

    def input_convention(self) -> dict:
        """This normalisation as ``DetDataPreprocessor`` fields (detectors read BGR)."""
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


class LinearClsHead(nn.Module):
    """Global average pooling followed by ``fc``."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@MODELS.register_module()
class ShuffleNetClassifier(BaseModel):
    """ShuffleNet V1 image classifier: backbone, :class:`LinearClsHead`.

    Args:
        backbone (dict): Backbone config; its last map feeds the head.
        num_classes (int): Number of classes. Default: 1000.
        label_smoothing (float): Of the cross-entropy loss (the official release
            uses 0.1). Default: 0.0.
        data_preprocessor (dict, optional): Default: ``dict(type='ClsDataPreprocessor')``.
        init_cfg (dict, optional): Initialisation config. Default: None.
    """

    def __init__(self,
                 backbone: dict = dict(type='ShuffleNetV1', out_indices=(2, )),
                 num_classes: int = 1000,
                 label_smoothing: float = 0.0,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor
                         or dict(type='ClsDataPreprocessor'), init_cfg=init_cfg)
        if num_classes < 1:
            raise ValueError(f'num_classes must be positive, got {num_classes}')
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f'label_smoothing must be in [0, 1), got {label_smoothing}')
        self.backbone = MODELS.build(backbone)
        self.head = LinearClsHead(self.backbone.out_channels[-1], num_classes)
        self.label_smoothing = label_smoothing

    def switch_to_deploy(self, **kwargs) -> 'ShuffleNetClassifier':
        """The backbone's ``switch_to_deploy(**kwargs)``; returns ``self`` in eval mode."""
        self.backbone.switch_to_deploy(**kwargs)
        return self.eval()

    def forward(self, inputs: Tensor, data_samples: Optional[Sequence] = None,
                mode: str = 'tensor'):
        """'tensor': logits; 'loss': ``loss_cls``; 'predict': dicts of ``pred_score``
        (softmax) and ``gt_label``."""
        if mode not in ('tensor', 'loss', 'predict'):
            raise ValueError(f"mode must be 'tensor', 'loss' or 'predict', got {mode!r}")
        if mode == 'loss' and data_samples is None:
            raise ValueError("mode='loss' needs the labels as data_samples")
        logits = self.head(self.backbone(inputs)[-1])
        if mode == 'tensor':
            return logits
        if mode == 'loss':
            return dict(loss_cls=F.cross_entropy(logits, torch.as_tensor(data_samples),
                                                 label_smoothing=self.label_smoothing))
        labels = [None] * len(logits) if data_samples is None else data_samples
        return [dict(pred_score=s, gt_label=None if y is None else int(y))
                for s, y in zip(logits.softmax(dim=1), labels)]
