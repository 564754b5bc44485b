"""The ImageNet classifier used to pretrain ShuffleNet V1 backbones.

Backbone, global average pooling and one linear layer, with parameter names of
OpenMMLab's classifier (``backbone.*``, ``head.fc.*``) so that its checkpoints and
this project's load into each other and into detectors with ``prefix='backbone.'``.
"""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseModel
from torch import Tensor


class LinearClsHead(nn.Module):
    """Global average pooling followed by ``fc``."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@MODELS.register_module()
class ShuffleNetClassifier(BaseModel):
    """ShuffleNet V1 image classifier.

    Args:
        backbone (dict): Backbone config; its last returned map feeds the head.
            Default: ``dict(type='ShuffleNetV1', out_indices=(2, ))``.
        num_classes (int): Number of classes. Default: 1000.
        label_smoothing (float): Label smoothing of the cross-entropy loss (the
            official release uses 0.1). Default: 0.0.
        data_preprocessor (dict, optional): Config of the data preprocessor.
            Default: ``dict(type='ClsDataPreprocessor')``.
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
        """Convert the backbone to its inference fast path (``ShuffleNetV1.switch_to_deploy``
        takes the arguments)."""
        self.backbone.switch_to_deploy(**kwargs)
        return self.eval()

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[Sequence] = None,
                mode: str = 'tensor'):
        """``mode='tensor'``: logits; ``'loss'``: dict with ``loss_cls``; ``'predict'``:
        a list of dicts with ``pred_score`` (softmax) and, given labels, ``gt_label``."""
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
        scores = logits.softmax(dim=1)
        labels = [None] * len(scores) if data_samples is None else data_samples
        return [dict(pred_score=s, gt_label=None if y is None else int(y))
                for s, y in zip(scores, labels)]
