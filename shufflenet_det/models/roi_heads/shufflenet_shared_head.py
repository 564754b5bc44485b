"""Stage 4 of ShuffleNet V1 as the per-RoI shared head of the paper's C4 Faster R-CNN.

The paper (Sec. 4.2, Table 7) used the Caffe Faster R-CNN layout: features up to
stride 16 feed the RPN and RoI pooling, and the last stage runs on every RoI.
The backbone then stops after Stage 3 (``num_stages=2``) and this head holds
Stage 4, built by the backbone's own stage builder so that an ImageNet
checkpoint's ``backbone.layers.2.*`` are exactly its parameters (see
``shufflenet_det.checkpoint.detector_init``).
"""
from typing import Optional

from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

from ..backbones.shufflenet_v1 import (STAGE_UNITS, init_shufflenet_weights, keep_norms_in_eval,
                                       shufflenet_v1_channels)
from ..layers.shuffle_unit import (check_deploy_options, make_shuffle_stage,
                                   switch_units_to_deploy)


@MODELS.register_module()
class ShuffleNetV1SharedHead(BaseModule):
    """ShuffleNet V1 Stage 4 applied to RoI features (stride 2, so 14x14 RoIs become 7x7).

    Args:
        groups (int): As the backbone's. Default: 3.
        widen_factor (float): As the backbone's. Default: 1.0.
        shuffle (bool): As the backbone's. Default: True.
        shuffle_order (str): As the backbone's: 'paper' or 'megvii'. Default: 'paper'.
        with_se (bool): As the backbone's. Default: False.
        shallow (bool): As the backbone's: half the units. Default: False.
        conv_cfg (dict, optional): Convolution config. Default: None.
        norm_cfg (dict): Normalisation config. Default: dict(type='BN').
        act_cfg (dict): Activation config. Default: dict(type='ReLU').
        norm_eval (bool): Keep BN layers in eval mode while training.
            Default: True, as detectors train with a few images per GPU.
        with_cp (bool): Activation checkpointing in every unit. Default: False.
        init_cfg (dict, optional): Initialisation config; ``None`` initialises
            as the official code does. Pretrained weights come through the
            detector's ``ShuffleNetPretrained`` initialiser. Default: None.

    Attributes:
        in_channels (int): Stage 3 channels, which the RoI extractor must give.
        out_channels (int): Stage 4 channels, which the box head receives.
        deployed (bool): Converted by :meth:`switch_to_deploy` (inference only).
    """

    def __init__(self,
                 groups: int = 3,
                 widen_factor: float = 1.0,
                 shuffle: bool = True,
                 shuffle_order: str = 'paper',
                 with_se: bool = False,
                 shallow: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU'),
                 norm_eval: bool = True,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        channels = shufflenet_v1_channels(groups, widen_factor)
        self.in_channels, self.out_channels = channels[2], channels[3]
        self.norm_eval = norm_eval
        self.shuffle_order = shuffle_order
        self.deployed = False
        units = STAGE_UNITS[2] // (2 if shallow else 1)
        self.stage4 = make_shuffle_stage(
            self.in_channels, self.out_channels, units, groups, shuffle=shuffle,
            shuffle_order=shuffle_order, with_se=with_se, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
            act_cfg=act_cfg, with_cp=with_cp)

    def init_weights(self) -> None:
        init_shufflenet_weights(self)

    def switch_to_deploy(self, memory_format: str = 'channels_last', pointwise: str = 'matmul',
                         fast_shuffle: bool = False, merge_inplace: bool = True,
                         compile: bool = False) -> 'ShuffleNetV1SharedHead':
        """Convert in place to the CPU inference fast path (``ShuffleNetV1.switch_to_deploy``
        documents the arguments)."""
        check_deploy_options(memory_format, pointwise)
        if self.deployed:
            return self
        switch_units_to_deploy(self, memory_format, pointwise, fast_shuffle, merge_inplace)
        self.deployed = True
        if compile:
            self.compile()
        return self

    def forward(self, x: Tensor) -> Tensor:
        return self.stage4(x)

    def train(self, mode: bool = True) -> 'ShuffleNetV1SharedHead':
        if mode and self.deployed:
            raise RuntimeError('this shared head was converted by switch_to_deploy() and is for '
                               'inference only')
        super().train(mode)
        if mode and self.norm_eval:
            keep_norms_in_eval(self)
        return self
