"""The ShuffleNet unit (paper Fig. 2b and 2c), its stage builder, and its inference form.

Each unit converts itself for inference (:meth:`ShuffleUnit.switch_to_deploy`), as
MMPretrain's re-parameterisable blocks do: BN folds into the convolutions, pointwise
convolutions become :class:`PointwiseMatmul`, the average pool runs channels_last and
the merge works in place. Outputs change only by float rounding.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule, build_activation_layer, fuse_conv_bn
from mmdet.models.layers import SELayer
from mmengine.model import BaseModule
from torch import Tensor

from .channel_shuffle import exportable_channel_shuffle
from .inference_ops import ChannelsLastPool, replace_pointwise_convs

SHUFFLE_ORDERS = ('paper', 'megvii')
MEMORY_FORMATS = ('contiguous', 'channels_last')
POINTWISE_IMPLS = ('matmul', 'conv')


def check_choice(name: str, value, choices: tuple, why: str = '') -> None:
    """Raise a ValueError naming ``value`` and the allowed ones."""
    if value not in choices:
        raise ValueError(f'{name} must be one of {choices}{why}, got {value!r}')


class ShuffleUnit(BaseModule):
    """The ShuffleNet unit.

    ``1x1 GConv -> BN -> ReLU -> 3x3 DWConv -> BN -> shuffle -> 1x1 GConv -> BN``, then
    ``ReLU(x + branch)`` at stride 1 or ``cat(AvgPool3x3(x), ReLU(branch))`` at stride 2.
    The shuffle follows the depthwise convolution, as in both public implementations
    (the same function family: that convolution is per channel).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels; at stride 2 the branch makes
            ``out_channels - in_channels`` of them.
        mid_channels (int): Bottleneck channels.
        groups (int): Groups of the pointwise convolutions. Default: 3.
        stride (int): 1 (residual add) or 2 (avg-pool shortcut, concat). Default: 1.
        group_first_conv (bool): Group the first pointwise convolution (the paper
            leaves it dense in the first unit of Stage 2). Default: True.
        shuffle (bool): Apply the channel shuffle. Default: True.
        shuffle_order (str): 'paper' or 'megvii' (the inverse permutation of the
            official code). Default: 'paper'.
        with_se (bool): Squeeze-and-Excitation (ratio 16) on the branch. Default: False.
        conv_cfg (dict, optional): Convolution config. Default: None.
        norm_cfg (dict): Normalisation config. Default: dict(type='BN').
        act_cfg (dict): Activation config. Default: dict(type='ReLU').
        with_cp (bool): Activation checkpointing. Default: False.
        init_cfg (dict, optional): Initialisation config. Default: None.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 mid_channels: int,
                 groups: int = 3,
                 stride: int = 1,
                 group_first_conv: bool = True,
                 shuffle: bool = True,
                 shuffle_order: str = 'paper',
                 with_se: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU'),
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if stride not in (1, 2):
            raise ValueError(f'stride must be 1 or 2, got {stride}')
        if stride == 1 and in_channels != out_channels:
            raise ValueError('a stride-1 unit adds its input to its output, so in_channels '
                             f'({in_channels}) must equal out_channels ({out_channels})')
        branch_channels = out_channels - in_channels if stride == 2 else out_channels
        if branch_channels <= 0:
            raise ValueError(f'a stride-2 unit needs out_channels ({out_channels}) > '
                             f'in_channels ({in_channels})')
        first_groups = groups if group_first_conv else 1
        for name, value, divisor in (('in_channels', in_channels, first_groups),
                                     ('mid_channels', mid_channels, groups),
                                     ('branch output channels', branch_channels, groups)):
            if value % divisor:
                raise ValueError(f'{name} ({value}) must be divisible by groups ({divisor})')
        check_choice('shuffle_order', shuffle_order, SHUFFLE_ORDERS, " (the paper's permutation, "
                     'or the inverse one of the official Megvii code)')
        self.in_channels, self.out_channels, self.mid_channels = \
            in_channels, out_channels, mid_channels
        self.groups, self.stride, self.with_cp = groups, stride, with_cp
        self.shuffle = shuffle and groups > 1
        self.shuffle_order = shuffle_order
        self.deployed = self.fast_shuffle = self.merge_inplace = False

        self.g_conv_1x1_compress = ConvModule(
            in_channels, mid_channels, 1, groups=first_groups,
            conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.depthwise_conv3x3_bn = ConvModule(
            mid_channels, mid_channels, 3, stride=stride, padding=1, groups=mid_channels,
            conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=None)
        self.g_conv_1x1_expand = ConvModule(
            mid_channels, branch_channels, 1, groups=groups,
            conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=None)
        self.se = SELayer(branch_channels, ratio=16) if with_se else None
        if stride == 2:
            self.avgpool = nn.AvgPool2d(kernel_size=3, stride=2, padding=1)
        self.act = build_activation_layer(act_cfg)

    def channel_shuffle(self, x: Tensor) -> Tensor:
        """The unit's shuffle in its ``shuffle_order``."""
        # The inverse permutation is the paper's with C / groups groups.
        channels = self.mid_channels
        groups = self.groups if self.shuffle_order == 'paper' else channels // self.groups
        if self.fast_shuffle:
            return torch.channel_shuffle(x, groups)
        return exportable_channel_shuffle(x, groups, channels)

    def _forward(self, x: Tensor) -> Tensor:
        out = self.depthwise_conv3x3_bn(self.g_conv_1x1_compress(x))
        if self.shuffle:
            out = self.channel_shuffle(out)
        out = self.g_conv_1x1_expand(out)
        if self.se is not None:
            out = self.se(out)
        if self.stride == 2:
            return torch.cat((self.avgpool(x), self.act(out)), dim=1)
        # Deployed, nothing else reads the branch output, so the sum may reuse it.
        return self.act(out.add_(x) if self.merge_inplace else x + out)

    def forward(self, x: Tensor) -> Tensor:
        if self.with_cp and self.training and torch.is_grad_enabled():
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)

    def switch_to_deploy(self, pointwise: str = 'matmul', fast_shuffle: bool = False,
                         merge_inplace: bool = True) -> None:
        """Convert in place for inference (BN fused: no training afterwards).

        Args:
            pointwise (str): 'matmul' (:class:`PointwiseMatmul`) or 'conv'. Default: 'matmul'.
            fast_shuffle (bool): ATen's ``torch.channel_shuffle`` (faster on NCHW alone,
                slower in the channels_last network). Default: False.
            merge_inplace (bool): Add and ReLU in place. Default: True.
        """
        check_choice('pointwise', pointwise, POINTWISE_IMPLS)
        if self.deployed:
            return
        self.eval()
        fuse_conv_bn(self)
        if self.stride == 2:
            self.avgpool = ChannelsLastPool(self.avgpool)
        if pointwise == 'matmul':
            replace_pointwise_convs(self)
        self.fast_shuffle, self.merge_inplace = fast_shuffle, merge_inplace
        if merge_inplace and isinstance(self.act, nn.ReLU):
            self.act.inplace = True
        self.deployed = True


def make_shuffle_stage(in_channels: int, out_channels: int, num_units: int, groups: int,
                       group_first_conv: bool = True, **unit_kwargs) -> nn.Sequential:
    """One stage: a stride-2 unit, then ``num_units - 1`` stride-1 units, each with a
    bottleneck of ``out_channels // 4``; ``unit_kwargs`` go to every :class:`ShuffleUnit`."""
    return nn.Sequential(*(
        ShuffleUnit(in_channels if i == 0 else out_channels, out_channels,
                    mid_channels=out_channels // 4, groups=groups, stride=2 if i == 0 else 1,
                    group_first_conv=group_first_conv or i > 0, **unit_kwargs)
        for i in range(num_units)))
