"""ShuffleNet V1 backbone (Zhang et al., "ShuffleNet: An Extremely Efficient Convolutional
Neural Network for Mobile Devices", CVPR 2018; https://github.com/megvii-model/ShuffleNet-Series).

Parameter names, ``out_indices`` and ``frozen_stages`` are those of OpenMMLab's
ShuffleNetV1, so its configs and checkpoints work unchanged. Channel lists follow the
official release where it defines one, and the channel shuffle can be the official
code's (``shuffle_order='megvii'``), so that Megvii's converted weights run exactly. This
file holds the project's one architecture table: every other module reads it.
"""
from collections.abc import Mapping
from typing import Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, fuse_conv_bn
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from mmengine.model.weight_init import PretrainedInit, constant_init, normal_init
from mmengine.registry import WEIGHT_INITIALIZERS
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from ..layers.inference_ops import ChannelsLastPool
from ..layers.shuffle_unit import (MEMORY_FORMATS, POINTWISE_IMPLS, ShuffleUnit, check_choice,
                                   make_shuffle_stage)

# Stage 2-4 output channels of "ShuffleNet 1x" (paper Table 1), keyed by groups.
BASE_CHANNELS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960),
                 4: (272, 544, 1088), 8: (384, 768, 1536)}
# (stem, Stage 2, 3, 4) channels of the official release, keyed by (groups, widen_factor).
OFFICIAL_CHANNELS = {
    (3, 0.5): (12, 120, 240, 480), (3, 1.0): (24, 240, 480, 960),
    (3, 1.5): (24, 360, 720, 1440), (3, 2.0): (48, 480, 960, 1920),
    (8, 0.5): (16, 192, 384, 768), (8, 1.0): (24, 384, 768, 1536),
    (8, 1.5): (24, 576, 1152, 2304), (8, 2.0): (48, 768, 1536, 3072),
}
GROUPS = tuple(BASE_CHANNELS)
WIDEN_FACTORS = (0.25, 0.5, 1.0, 1.5, 2.0)
STAGE_UNITS = (4, 8, 4)  # units in Stages 2-4 (Table 1); the shallow variant halves them


def shufflenet_v1_channels(groups: int = 3, widen_factor: float = 1.0) -> tuple[int, ...]:
    """(stem, Stage 2, 3, 4) channels of ShuffleNet ``widen_factor`` x with ``groups``.

    The official list where there is one; otherwise Table 1 x ``widen_factor`` rounded
    to the nearest multiple of ``4 * groups`` (so that the bottleneck, a quarter, splits
    into the groups) and a stem of ``24 * widen_factor`` rounded to a multiple of
    ``groups``, ties up: 0.5x g=2 is (12, 104, 200, 400). Configs wire necks with this.
    """
    check_choice('groups', groups, GROUPS)
    check_choice('widen_factor', widen_factor, WIDEN_FACTORS)
    if (groups, widen_factor) in OFFICIAL_CHANNELS:
        return OFFICIAL_CHANNELS[(groups, widen_factor)]

    def rounded(value: float, divisor: int) -> int:
        return max(divisor, int(value / divisor + 0.5) * divisor)

    return (rounded(24 * widen_factor, groups),
            *(rounded(c * widen_factor, 4 * groups) for c in BASE_CHANNELS[groups]))


def init_like_official(module: nn.Module) -> None:
    """The official initialisation: convs N(0, 1/fan_in) (the stem N(0, 0.01)), norm
    layers weight 1 and bias 1e-4."""
    for name, m in module.named_modules():
        if isinstance(m, nn.Conv2d):
            std = 0.01 if name.startswith('conv1.') else 1.0 / m.weight.shape[1]
            normal_init(m, mean=0, std=std, bias=0)
        elif isinstance(m, (_BatchNorm, nn.GroupNorm)):
            constant_init(m, val=1, bias=1e-4)


class ShuffleNetModule(BaseModule):
    """What the backbone and the C4 RoI head share: initialisation, ``norm_eval``, and the
    conversion to the inference fast path."""
    norm_eval = False
    deployed = channels_last = False

    def init_weights(self) -> None:
        """``init_cfg=None``: the official initialisation. ``dict(type='Pretrained', ...)``
        loads strictly (``StrictPretrained``, registered by ``shufflenet_det.checkpoint``),
        and with ``missing_ok`` falls back to the official one. Else MMEngine's."""
        cfg = self.init_cfg
        pretrained = isinstance(cfg, Mapping) and cfg.get('type') in ('Pretrained',
                                                                      PretrainedInit)
        if cfg is not None and not pretrained:
            return super().init_weights()
        if not (pretrained and WEIGHT_INITIALIZERS.build(dict(cfg, type='StrictPretrained'))(self)):
            init_like_official(self)
        self._is_init = True

    def switch_to_deploy(self, memory_format: str = 'channels_last', pointwise: str = 'matmul',
                         fast_shuffle: bool = False, merge_inplace: bool = True,
                         compile: bool = False):
        """Convert in place to the CPU inference fast path (BN fused: no training after).

        Args:
            memory_format (str): 'contiguous' (NCHW; pools still run channels_last) or
                'channels_last'. Default: 'channels_last'.
            pointwise (str): 'matmul' or 'conv' (:meth:`ShuffleUnit.switch_to_deploy`,
                which also takes ``fast_shuffle`` and ``merge_inplace``). Default: 'matmul'.
            compile (bool): Also ``torch.compile`` this module (slow first call for
                each input shape). Default: False.

        Returns:
            ``self``, in eval mode.
        """
        check_choice('memory_format', memory_format, MEMORY_FORMATS)
        check_choice('pointwise', pointwise, POINTWISE_IMPLS)
        if self.deployed:
            return self
        self.eval()
        for unit in self.modules():
            if isinstance(unit, ShuffleUnit):
                unit.switch_to_deploy(pointwise, fast_shuffle, merge_inplace)
        fuse_conv_bn(self)  # the stem
        for name, child in self.named_children():
            if isinstance(child, nn.MaxPool2d):
                setattr(self, name, ChannelsLastPool(child))
        self.channels_last = memory_format == 'channels_last'
        if self.channels_last:
            self.to(memory_format=torch.channels_last)
        self.deployed = True
        if compile:
            self.compile()
        return self

    def _freeze_stages(self) -> None:
        pass

    def train(self, mode: bool = True):
        """Switch mode, keeping frozen stages and (with ``norm_eval``) BN layers in eval."""
        if mode and self.deployed:
            raise RuntimeError(f'this {type(self).__name__} was converted by switch_to_deploy() '
                               '(BN fused into the convolutions) and is for inference only; '
                               'build a new one to train')
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self


@MODELS.register_module()
class ShuffleNetV1(ShuffleNetModule):
    """ShuffleNet V1 backbone; channels as :func:`shufflenet_v1_channels` gives them.

    Args:
        groups (int): Groups of the pointwise convolutions, one of (1, 2, 3, 4, 8).
            Default: 3.
        widen_factor (float): "ShuffleNet s x", one of (0.25, 0.5, 1.0, 1.5, 2.0).
            Default: 1.0.
        out_indices (Sequence[int]): Stages to return, as in OpenMMLab's ShuffleNetV1:
            0, 1, 2 are Stages 2, 3, 4 (strides 8, 16, 32). Default: (2, ).
        num_stages (int): How many of Stages 2-4 to build; a C4 detector builds 2 and
            runs Stage 4 per RoI. Default: 3.
        frozen_stages (int): -1 freezes nothing, 0 the stem, k the stem and k stages
            (parameters and BN statistics). Default: -1.
        shuffle (bool): Channel shuffle on (off: Table 3 ablation). Default: True.
        shuffle_order (str): 'paper', or 'megvii', the official code's inverse
            permutation that its g=8 0.5x-1.5x weights need. Default: 'paper'.
        with_se (bool): SE in every unit (Table 5). Default: False.
        shallow (bool): Units (2, 4, 2) instead of (4, 8, 4) (Table 5). Default: False.
        conv_cfg (dict, optional): Convolution config. Default: None.
        norm_cfg (dict): Normalisation config. Default: dict(type='BN').
        act_cfg (dict): Activation config. Default: dict(type='ReLU').
        norm_eval (bool): Keep BN layers in eval mode while training. Default: False.
        with_cp (bool): Activation checkpointing in every unit. Default: False.
        init_cfg (dict, optional): None: the official initialisation;
            ``dict(type='Pretrained', checkpoint=PATH, prefix='backbone.')`` loads
            strictly (``missing_ok=True``: fall back when PATH is missing;
            ``strict=False``: load the tensors that fit). Default: None.

    Attributes:
        stage_channels (tuple[int]): Channels of (stem, Stage 2, 3, 4).
        feature_info (list[dict]): ``channels``, ``stride`` and ``module`` of each
            built stage.
        out_channels, out_strides (tuple[int]): Of each map ``forward`` returns.
    """

    def __init__(self,
                 groups: int = 3,
                 widen_factor: float = 1.0,
                 out_indices: Sequence[int] = (2, ),
                 num_stages: int = 3,
                 frozen_stages: int = -1,
                 shuffle: bool = True,
                 shuffle_order: str = 'paper',
                 with_se: bool = False,
                 shallow: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU'),
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.stage_channels = shufflenet_v1_channels(groups, widen_factor)
        check_choice('num_stages', num_stages, (1, 2, 3))
        valid = tuple(range(num_stages))
        if isinstance(out_indices, int) or not out_indices \
                or not set(out_indices) <= set(valid) or len(set(out_indices)) != len(out_indices):
            stages = ', '.join(f'{i} = Stage {i + 2}' for i in valid)
            raise ValueError(f'out_indices must be a non-empty sequence of distinct values '
                             f'from {valid} (with num_stages={num_stages}; {stages}), '
                             f'got {out_indices!r}')
        check_choice('frozen_stages', frozen_stages, tuple(range(-1, num_stages + 1)),
                     f' (with num_stages={num_stages})')
        self.groups, self.widen_factor = groups, widen_factor
        self.out_indices = tuple(sorted(out_indices))
        self.num_stages, self.frozen_stages = num_stages, frozen_stages
        self.norm_eval, self.shuffle_order = norm_eval, shuffle_order

        self.conv1 = ConvModule(3, self.stage_channels[0], 3, stride=2, padding=1,
                                conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        units = tuple(n // 2 for n in STAGE_UNITS) if shallow else STAGE_UNITS
        self.layers = nn.ModuleList(
            make_shuffle_stage(self.stage_channels[i], self.stage_channels[i + 1], units[i],
                               groups, group_first_conv=i > 0, shuffle=shuffle,
                               shuffle_order=shuffle_order, with_se=with_se, conv_cfg=conv_cfg,
                               norm_cfg=norm_cfg, act_cfg=act_cfg, with_cp=with_cp)
            for i in range(num_stages))
        self.feature_info = [dict(channels=self.stage_channels[i + 1], stride=8 * 2**i,
                                  module=f'layers.{i}') for i in range(num_stages)]
        self.out_channels = tuple(self.feature_info[i]['channels'] for i in self.out_indices)
        self.out_strides = tuple(self.feature_info[i]['stride'] for i in self.out_indices)
        self._freeze_stages()

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.maxpool(self.conv1(x))
        outs = []
        for i, stage in enumerate(self.layers):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _freeze_stages(self) -> None:
        frozen = [self.conv1] if self.frozen_stages >= 0 else []
        for module in frozen + list(self.layers[:max(self.frozen_stages, 0)]):
            module.eval()
            for param in module.parameters():
                param.requires_grad = False
