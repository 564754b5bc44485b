"""ShuffleNet V1 backbone for MMDetection.

Paper: Xiangyu Zhang, Xinyu Zhou, Mengxiao Lin, Jian Sun. "ShuffleNet: An
Extremely Efficient Convolutional Neural Network for Mobile Devices", CVPR 2018
(arXiv:1707.01083).
Original code: https://github.com/megvii-model/ShuffleNet-Series (ShuffleNetV1/).

The network is the paper's (Table 1, Fig. 2). Parameter names follow OpenMMLab's
classification ShuffleNetV1, so its checkpoints load without renaming; Megvii's
official checkpoints load after ``tools/convert_checkpoint.py``. What differs:

* channel lists come from the official release wherever it defines one (g=3 and
  g=8 at 0.5x-2.0x, stems included); OpenMMLab instead rounds every width,
  which changes the stem of 1.5x (36 instead of 24);
* the channel shuffle is the paper's permutation; Megvii's code applies its
  inverse, which the converter accounts for;
* switches for the paper's ablations: no shuffle (Table 3), SE units and the
  shallow network (Table 5);
* ``out_indices`` counts the stem as 0, and ``num_stages`` lets a detector run
  the last stage per RoI instead (the paper's C4 Faster R-CNN).
"""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule, build_activation_layer
from mmdet.models.layers import SELayer
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from mmengine.model.weight_init import constant_init, normal_init
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from ...checkpoint.pretrained import init_from_pretrained, is_pretrained_cfg
from ..layers.channel_shuffle import channel_shuffle

ConfigType = dict
OptConfigType = Optional[dict]


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
        with_se (bool): Reweight the branch output with a Squeeze-and-
            Excitation block (reduction 16) before it is merged. Default: False.
        conv_cfg (dict, optional): Convolution config. Default: None.
        norm_cfg (dict): Normalisation config. Default: dict(type='BN').
        act_cfg (dict): Activation config. Default: dict(type='ReLU').
        with_cp (bool): Recompute the unit in the backward pass (activation
            checkpointing) to save memory. BN running statistics are then
            updated twice per step, as in MMDetection's ResNet. Default: False.
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
                 with_se: bool = False,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN'),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 with_cp: bool = False,
                 init_cfg: OptConfigType = None) -> None:
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

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.mid_channels = mid_channels
        self.groups = groups
        self.stride = stride
        self.shuffle = shuffle and groups > 1
        self.shuffle_fn = channel_shuffle  # deploy() may swap in an equivalent faster kernel
        self.merge_inplace = False  # deploy(): add and ReLU in place (inference only)
        self.with_cp = with_cp

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

    def _forward(self, x: Tensor) -> Tensor:
        out = self.g_conv_1x1_compress(x)
        out = self.depthwise_conv3x3_bn(out)
        if self.shuffle:
            out = self.shuffle_fn(out, self.groups)
        out = self.g_conv_1x1_expand(out)
        if self.se is not None:
            out = self.se(out)
        if self.stride == 2:
            return torch.cat((self.avgpool(x), self.act(out)), dim=1)
        return self.act(out.add_(x) if self.merge_inplace else x + out)

    def forward(self, x: Tensor) -> Tensor:
        if self.with_cp and self.training and torch.is_grad_enabled():
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)


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
    units = []
    for i in range(num_units):
        units.append(ShuffleUnit(
            in_channels if i == 0 else out_channels,
            out_channels,
            mid_channels=out_channels // 4,
            groups=groups,
            stride=2 if i == 0 else 1,
            group_first_conv=group_first_conv or i > 0,
            **unit_kwargs))
    return nn.Sequential(*units)


def init_like_official(module: nn.Module) -> None:
    """The official code's initialisation: N(0, 1/fan_in) convs (the stem N(0, 0.01)),
    norm layers with weight 1 and bias 1e-4."""
    for name, m in module.named_modules():
        if isinstance(m, nn.Conv2d):
            std = 0.01 if name.startswith('conv1.') else 1.0 / m.weight.shape[1]
            normal_init(m, mean=0, std=std, bias=0)
        elif isinstance(m, (_BatchNorm, nn.GroupNorm)):
            constant_init(m, val=1, bias=1e-4)


def _round_to_multiple(value: float, divisor: int) -> int:
    """Nearest positive multiple of ``divisor`` (ties round up)."""
    return max(divisor, int(value / divisor + 0.5) * divisor)


# Stage 2-4 output channels of "ShuffleNet 1x", paper Table 1.
BASE_CHANNELS = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}
# (stem, Stage 2, 3, 4) channels fixed by the official Megvii release.
OFFICIAL_CHANNELS = {
    (3, 0.5): (12, 120, 240, 480),
    (3, 1.0): (24, 240, 480, 960),
    (3, 1.5): (24, 360, 720, 1440),
    (3, 2.0): (48, 480, 960, 1920),
    (8, 0.5): (16, 192, 384, 768),
    (8, 1.0): (24, 384, 768, 1536),
    (8, 1.5): (24, 576, 1152, 2304),
    (8, 2.0): (48, 768, 1536, 3072),
}
WIDEN_FACTORS = (0.25, 0.5, 1.0, 1.5, 2.0)


def shufflenet_v1_channels(groups: int = 3, widen_factor: float = 1.0) -> tuple[int, ...]:
    """(stem, Stage 2, Stage 3, Stage 4) channels of ShuffleNet V1 ``widen_factor`` x, g=``groups``.

    The official release's lists where it defines one, else Table 1 x ``widen_factor``
    rounded as :class:`ShuffleNetV1` documents. Configs import this to wire necks and
    heads to the backbone without copying numbers.

    Raises:
        ValueError: for groups or widths outside the allowed values.
    """
    if groups not in BASE_CHANNELS:
        raise ValueError(f'groups must be one of {tuple(BASE_CHANNELS)}, got {groups!r}')
    if widen_factor not in WIDEN_FACTORS:
        raise ValueError(f'widen_factor must be one of {WIDEN_FACTORS}, got {widen_factor!r}')
    if (groups, widen_factor) in OFFICIAL_CHANNELS:
        return OFFICIAL_CHANNELS[(groups, widen_factor)]
    stem = _round_to_multiple(24 * widen_factor, groups)
    stages = tuple(_round_to_multiple(c * widen_factor, 4 * groups) for c in BASE_CHANNELS[groups])
    return (stem, *stages)


@MODELS.register_module()
class ShuffleNetV1(BaseModule):
    """ShuffleNet V1 backbone.

    Channel lists ``(stem, Stage 2, Stage 3, Stage 4)``, as
    :func:`shufflenet_v1_channels` gives them, come from
    :attr:`official_channels` when the official release defines the
    ``(groups, widen_factor)`` pair (g=3 and g=8 at 0.5x-2.0x). Otherwise they
    are Table 1's 1x widths times ``widen_factor``, rounded to the nearest
    multiple of ``4 * groups`` (so the bottleneck, a quarter of the width,
    splits into ``groups`` equal groups), and a stem of ``24 * widen_factor``
    rounded to the nearest multiple of ``groups``; ties round up. For example
    0.5x g=2 is (12, 104, 200, 400) and 0.25x g=4 is (8, 64, 144, 272).

    Args:
        groups (int): Groups of the pointwise convolutions, one of
            (1, 2, 3, 4, 8). Default: 3.
        widen_factor (float): Width multiplier "s" of "ShuffleNet s x", one of
            (0.25, 0.5, 1.0, 1.5, 2.0). Default: 1.0.
        out_indices (Sequence[int]): Feature maps to return: 0 is the stem after
            max-pooling (stride 4), 1 Stage 2 (stride 8), 2 Stage 3 (stride 16),
            3 Stage 4 (stride 32). Default: (1, 2, 3).
        num_stages (int): How many of Stages 2-4 to build, 1 to 3. A C4
            detector builds 2 and runs Stage 4 per RoI. Default: 3.
        frozen_stages (int): -1 freezes nothing, 0 the stem, k the stem and the
            first k stages; parameters and BN statistics both. Default: -1.
        shuffle (bool): Channel shuffle on (the paper's Table 3 ablation turns it
            off). Default: True.
        with_se (bool): Squeeze-and-Excitation in every unit (Table 5,
            "2x with SE"). Default: False.
        shallow (bool): Half the units per stage, (2, 4, 2) instead of
            (4, 8, 4) (Table 5, "0.5x shallow"). Default: False.
        conv_cfg (dict, optional): Convolution config. Default: None.
        norm_cfg (dict): Normalisation config, e.g. ``dict(type='GN',
            num_groups=...)`` or ``dict(type='SyncBN')``. Default: dict(type='BN').
        act_cfg (dict): Activation config. Default: dict(type='ReLU').
        norm_eval (bool): Keep BN layers in eval mode while training (frozen
            running statistics), for small per-GPU batches. Default: False.
        with_cp (bool): Activation checkpointing in every unit. Default: False.
        init_cfg (dict, optional): ``None`` initialises as the official code
            does. ``dict(type='Pretrained', checkpoint=PATH, prefix='backbone.')``
            loads a checkpoint strictly: a missing or unexpected key is an error.
            Add ``missing_ok=True`` to fall back, with a logged warning, to the
            default initialisation when PATH does not exist, or ``strict=False``
            to load only the tensors whose names and shapes match (the rest are
            listed in a warning). Default: None.

    Attributes:
        stage_channels (tuple[int]): Channels of (stem, Stage 2, 3, 4).
        feature_info (list[dict]): For each feature index, its ``channels``,
            ``stride`` and ``module`` name, recorded while building.
        out_channels (tuple[int]): Channels of each map ``forward`` returns.
        out_strides (tuple[int]): Stride of each map ``forward`` returns.
    """

    base_channels = BASE_CHANNELS
    official_channels = OFFICIAL_CHANNELS
    widen_factors = WIDEN_FACTORS
    stage_units = (4, 8, 4)

    def __init__(self,
                 groups: int = 3,
                 widen_factor: float = 1.0,
                 out_indices: Sequence[int] = (1, 2, 3),
                 num_stages: int = 3,
                 frozen_stages: int = -1,
                 shuffle: bool = True,
                 with_se: bool = False,
                 shallow: bool = False,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN'),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(init_cfg)
        self.stage_channels = shufflenet_v1_channels(groups, widen_factor)
        if num_stages not in (1, 2, 3):
            raise ValueError(f'num_stages must be one of (1, 2, 3), got {num_stages!r}')
        valid_indices = tuple(range(num_stages + 1))
        if (isinstance(out_indices, int) or len(out_indices) == 0
                or not set(out_indices) <= set(valid_indices)
                or len(set(out_indices)) != len(out_indices)):
            raise ValueError(f'out_indices must be a non-empty sequence of distinct values '
                             f'from {valid_indices} (with num_stages={num_stages}), '
                             f'got {out_indices!r}')
        if frozen_stages not in range(-1, num_stages + 1):
            raise ValueError(f'frozen_stages must be one of {tuple(range(-1, num_stages + 1))} '
                             f'(with num_stages={num_stages}), got {frozen_stages!r}')

        self.groups = groups
        self.widen_factor = widen_factor
        self.out_indices = tuple(sorted(out_indices))
        self.num_stages = num_stages
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.units_per_stage = tuple(n // 2 for n in self.stage_units) if shallow \
            else self.stage_units
        # Everything a ShuffleUnit needs beyond its widths; the C4 RoI head reuses it
        # to build Stage 4 exactly as this backbone would.
        self.unit_cfg = dict(shuffle=shuffle, with_se=with_se, conv_cfg=conv_cfg,
                             norm_cfg=norm_cfg, act_cfg=act_cfg, with_cp=with_cp)

        stem_channels = self.stage_channels[0]
        self.conv1 = ConvModule(3, stem_channels, 3, stride=2, padding=1,
                                conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.feature_info = [dict(channels=stem_channels, stride=4, module='maxpool')]

        self.layers = nn.ModuleList()
        for i in range(num_stages):
            self.layers.append(make_shuffle_stage(
                self.stage_channels[i], self.stage_channels[i + 1],
                self.units_per_stage[i], groups, group_first_conv=i > 0, **self.unit_cfg))
            self.feature_info.append(dict(channels=self.stage_channels[i + 1],
                                          stride=8 * 2**i, module=f'layers.{i}'))

        self.out_channels = tuple(self.feature_info[i]['channels'] for i in self.out_indices)
        self.out_strides = tuple(self.feature_info[i]['stride'] for i in self.out_indices)
        self._freeze_stages()

    def init_weights(self) -> None:
        """Load ``init_cfg``'s checkpoint strictly, or initialise as the official code does."""
        if is_pretrained_cfg(self.init_cfg):
            if init_from_pretrained(self, self.init_cfg):
                self._is_init = True
                return
        elif self.init_cfg is not None:
            super().init_weights()
            return
        init_like_official(self)
        self._is_init = True

    def deploy(self, memory_format: str = 'channels_last', pointwise: str = 'matmul',
               fast_shuffle: bool = False, compile: bool = False) -> 'ShuffleNetV1':
        """Convert to the CPU inference fast path, in place (BN fused: no training after).

        See :func:`shufflenet_det.deploy.deploy_shufflenet` for the arguments; the
        defaults were the fastest in ``tools/benchmark.py``'s ablation.
        """
        from ...deploy.fast_path import deploy_shufflenet
        return deploy_shufflenet(self, memory_format, pointwise, fast_shuffle, compile)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        if getattr(self, 'deploy_memory_format', None) == 'channels_last':
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.maxpool(self.conv1(x))
        outs = [x] if 0 in self.out_indices else []
        for i, stage in enumerate(self.layers, start=1):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _freeze_stages(self) -> None:
        frozen = [self.conv1] if self.frozen_stages >= 0 else []
        frozen += list(self.layers[:max(self.frozen_stages, 0)])
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'ShuffleNetV1':
        """Switch mode, keeping frozen stages and (with ``norm_eval``) BN layers in eval."""
        if mode and getattr(self, 'deployed', False):
            raise RuntimeError('this ShuffleNetV1 was converted by deploy() (BN fused into the '
                               'convolutions) and is for inference only; build a new one to train')
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
