"""Stage 4 of ShuffleNet V1 as the per-RoI shared head of the paper's C4 Faster R-CNN.

The paper (Sec. 4.2) feeds stride-16 features to the RPN and RoI pooling and runs the last
stage on every RoI: the backbone stops after Stage 3 (``num_stages=2``) and this head holds
Stage 4, built as the backbone builds it, so that an ImageNet checkpoint's
``backbone.layers.2.*`` are exactly its parameters (``shufflenet_det.checkpoint.pretrained``).
"""
from typing import Optional

from mmdet.registry import MODELS
from torch import Tensor

from ..backbones.shufflenet_v1 import STAGE_UNITS, ShuffleNetModule, shufflenet_v1_channels
from ..layers.shuffle_unit import make_shuffle_stage


@MODELS.register_module()
class ShuffleNetV1SharedHead(ShuffleNetModule):
    """ShuffleNet V1 Stage 4 on RoI features (stride 2: 14x14 RoIs become 7x7).

    Args:
        groups, widen_factor, shuffle, shuffle_order, with_se, shallow, conv_cfg,
            norm_cfg, act_cfg, with_cp: As the backbone's.
        norm_eval (bool): Keep BN layers in eval mode while training. Default: True,
            as detectors train with a few images per GPU.
        init_cfg (dict, optional): None: the official initialisation; pretrained
            weights come through the detector's initialiser. Default: None.

    Attributes:
        in_channels (int): Stage 3 channels, which the RoI extractor must give.
        out_channels (int): Stage 4 channels, which the box head receives.
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
        _, _, self.in_channels, self.out_channels = shufflenet_v1_channels(groups, widen_factor)
        self.norm_eval, self.shuffle_order = norm_eval, shuffle_order
        self.stage4 = make_shuffle_stage(
            self.in_channels, self.out_channels, STAGE_UNITS[2] // (2 if shallow else 1), groups,
            shuffle=shuffle, shuffle_order=shuffle_order, with_se=with_se, conv_cfg=conv_cfg,
            norm_cfg=norm_cfg, act_cfg=act_cfg, with_cp=with_cp)

    def forward(self, x: Tensor) -> Tensor:
        return self.stage4(x)
