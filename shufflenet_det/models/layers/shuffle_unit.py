"""The ShuffleNet unit (paper Fig. 2b and 2c), its stage builder and its inference form.

Each unit converts itself for inference (:meth:`ShuffleUnit.switch_to_deploy`),
in the manner of MMPretrain's re-parameterisable blocks: batch norm folds into
the convolutions, pointwise convolutions become :class:`PointwiseMatmul`, the
average pool runs channels_last, and the merge works in place. Outputs change
only by float rounding. Every option was measured as an ablation row by
``tools/benchmark.py backbone --ablation`` (docs/deploy.md, "The PyTorch fast path").
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule, build_activation_layer, fuse_conv_bn
from mmdet.models.layers import SELayer
from mmengine.model import BaseModule
from torch import Tensor

from .channel_shuffle import check_shuffle_order, exportable_channel_shuffle
from .channels_last_pool import ChannelsLastPool
from .pointwise_matmul import replace_pointwise_convs

#: ``memory_format`` of ``switch_to_deploy``: NCHW (pools still switch to channels_last),
#: or channels_last throughout.
MEMORY_FORMATS = ('contiguous', 'channels_last')
#: ``pointwise`` of ``switch_to_deploy``: batched matmul, or PyTorch's convolution.
POINTWISE_IMPLS = ('matmul', 'conv')


def check_deploy_options(memory_format: str, pointwise: str) -> None:
    """Raise a ValueError naming the value and the allowed ones."""
    if memory_format not in MEMORY_FORMATS:
        raise ValueError(f'memory_format must be one of {MEMORY_FORMATS}, got {memory_format!r}')
    if pointwise not in POINTWISE_IMPLS:
        raise ValueError(f'pointwise must be one of {POINTWISE_IMPLS}, got {pointwise!r}')


class ShuffleUnit(BaseModule):
    """The ShuffleNet unit (paper Fig. 2b and 2c).

    ``x -> 1x1 GConv -> BN -> ReLU -> 3x3 DWConv -> BN -> shuffle -> 1x1 GConv -> BN``,
    then ``ReLU(x + branch)`` at stride 1, or ``cat(AvgPool3x3(x), ReLU(branch))``
    at stride 2. There is no ReLU after the depthwise convolution. The shuffle
    sits after the depthwise convolution, as in both public implementations;
    since that convolution is per channel, this is the same function family as
    the paper's figure.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels of the unit. At stride 2 the branch
            produces ``out_channels - in_channels`` of them.
        mid_channels (int): Bottleneck channels (a quarter of the stage's output
            channels in ShuffleNet).
        groups (int): Groups of the pointwise convolutions. Default: 3.
        stride (int): 1 (residual add) or 2 (avg-pool shortcut and concat).
            Default: 1.
        group_first_conv (bool): Whether the first pointwise convolution is
            grouped. The paper leaves it dense in the first unit of Stage 2,
            whose input has only 24 channels. Default: True.
        shuffle (bool): Apply the channel shuffle. Default: True.
        shuffle_order (str): 'paper' (the paper's permutation) or 'megvii' (its
            inverse, which the official code applies). Default: 'paper'.
        with_se (bool): Reweight the branch output with a Squeeze-and-
            Excitation block (reduction 16) before it is merged. Default: False.
        conv_cfg (dict, optional): Convolution config. Default: None.
        norm_cfg (dict): Normalisation config. Default: dict(type='BN').
        act_cfg (dict): Activation config. Default: dict(type='ReLU').
        with_cp (bool): Recompute the unit in the backward pass (activation
            checkpointing) to save memory. BN running statistics are then
            updated twice per step, as in MMDetection's ResNet. Default: False.
        init_cfg (dict, optional): Initialisation config. Default: None.

    Attributes:
        deployed (bool): Converted by :meth:`switch_to_deploy` (inference only).
        fast_shuffle (bool): Shuffle with ATen's ``torch.channel_shuffle`` kernel.
        merge_inplace (bool): Add and ReLU in place at the merge.
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
        branch_channels = self._check_widths(in_channels, out_channels, mid_channels, groups,
                                             stride, group_first_conv)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.mid_channels = mid_channels
        self.groups = groups
        self.stride = stride
        self.shuffle = shuffle and groups > 1
        self.shuffle_order = check_shuffle_order(shuffle_order)
        self.with_cp = with_cp
        self.deployed = False
        self.fast_shuffle = False
        self.merge_inplace = False

        self.g_conv_1x1_compress = ConvModule(
            in_channels, mid_channels, 1, groups=groups if group_first_conv else 1,
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

    @staticmethod
    def _check_widths(in_channels: int, out_channels: int, mid_channels: int, groups: int,
                      stride: int, group_first_conv: bool) -> int:
        """Validate the widths; returns the branch's output channels."""
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
        return branch_channels

    def channel_shuffle(self, x: Tensor) -> Tensor:
        """The unit's shuffle in its ``shuffle_order``."""
        # The inverse permutation is the paper's with C / groups groups.
        channels = self.mid_channels
        groups = self.groups if self.shuffle_order == 'paper' else channels // self.groups
        if self.fast_shuffle:
            return torch.channel_shuffle(x, groups)
        return exportable_channel_shuffle(x, groups, channels)

    def _forward(self, x: Tensor) -> Tensor:
        out = self.g_conv_1x1_compress(x)
        out = self.depthwise_conv3x3_bn(out)
        if self.shuffle:
            out = self.channel_shuffle(out)
        out = self.g_conv_1x1_expand(out)
        if self.se is not None:
            out = self.se(out)
        if self.stride == 2:
            return torch.cat((self.avgpool(x), self.act(out)), dim=1)
        # In the deployed unit nothing else reads the branch output, so the sum may reuse it.
        return self.act(out.add_(x) if self.merge_inplace else x + out)

    def forward(self, x: Tensor) -> Tensor:
        if self.with_cp and self.training and torch.is_grad_enabled():
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)

    def switch_to_deploy(self, pointwise: str = 'matmul', fast_shuffle: bool = False,
                         merge_inplace: bool = True) -> None:
        """Convert this unit in place for inference (BN fused: it cannot train afterwards).

        Args:
            pointwise (str): 'matmul' (:class:`PointwiseMatmul`) or 'conv'
                (PyTorch's convolution). Default: 'matmul'.
            fast_shuffle (bool): ATen's ``torch.channel_shuffle`` instead of
                reshape/transpose. Faster on NCHW tensors alone, but slower in the
                channels_last network (docs/deploy.md). Default: False.
            merge_inplace (bool): Add and ReLU in place. Default: True.
        """
        check_deploy_options(MEMORY_FORMATS[0], pointwise)
        if self.deployed:
            return
        self.eval()
        fuse_conv_bn(self)
        if self.stride == 2:
            self.avgpool = ChannelsLastPool(self.avgpool)
        if pointwise == 'matmul':
            replace_pointwise_convs(self)
        self.fast_shuffle = fast_shuffle
        self.merge_inplace = merge_inplace
        if merge_inplace and isinstance(self.act, nn.ReLU):
            self.act.inplace = True
        self.deployed = True


def make_shuffle_stage(in_channels: int,
                       out_channels: int,
                       num_units: int,
                       groups: int,
                       group_first_conv: bool = True,
                       **unit_kwargs) -> nn.Sequential:
    """Build one ShuffleNet stage: a stride-2 unit, then ``num_units - 1`` stride-1 units.

    Every unit's bottleneck is a quarter of ``out_channels``. Kept as a function so
    that a detector's RoI head can build the last stage with the backbone's
    parameter names.

    Args:
        in_channels (int): Input channels of the stage.
        out_channels (int): Output channels of the stage.
        num_units (int): Units in the stage, at least 1.
        groups (int): Groups of the pointwise convolutions.
        group_first_conv (bool): Whether the first unit's first pointwise
            convolution is grouped (False only for Stage 2). Default: True.
        **unit_kwargs: Passed to every :class:`ShuffleUnit`.

    Returns:
        nn.Sequential: The units, named ``0`` to ``num_units - 1``.
    """
    return nn.Sequential(*(
        ShuffleUnit(in_channels if i == 0 else out_channels, out_channels,
                    mid_channels=out_channels // 4, groups=groups, stride=2 if i == 0 else 1,
                    group_first_conv=group_first_conv or i > 0, **unit_kwargs)
        for i in range(num_units)))


def switch_units_to_deploy(module: nn.Module, memory_format: str = 'channels_last',
                           pointwise: str = 'matmul', fast_shuffle: bool = False,
                           merge_inplace: bool = True) -> None:
    """Call :meth:`ShuffleUnit.switch_to_deploy` on every unit of ``module``, then set
    ``module``'s memory format. The shared part of the backbone's and the RoI head's
    ``switch_to_deploy``.
    """
    check_deploy_options(memory_format, pointwise)
    module.eval()
    for unit in module.modules():
        if isinstance(unit, ShuffleUnit):
            unit.switch_to_deploy(pointwise, fast_shuffle, merge_inplace)
    if memory_format == 'channels_last':
        module.to(memory_format=torch.channels_last)
