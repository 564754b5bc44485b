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
* the channel shuffle is the paper's permutation by default; ``shuffle_order=
  'megvii'`` selects the inverse one of the official code, which the official
  g=8 0.5x, 1.0x and 1.5x weights need;
* switches for the paper's ablations: no shuffle (Table 3), SE units and the
  shallow network (Table 5);
* ``num_stages`` lets a detector run the last stage per RoI instead (the
  paper's C4 Faster R-CNN).

``out_indices`` and ``frozen_stages`` follow OpenMMLab's ShuffleNetV1, so a
backbone config written for it means the same thing here: indices 0, 1 and 2
are Stages 2, 3 and 4 (default ``(2, )``, Stage 4 only; anything else is a
``ValueError``), and ``frozen_stages`` counts the stem first. Two additions:
a frozen stem also keeps its BN statistics (as in MMDetection's ResNet), and
``frozen_stages=3`` freezes the whole network.

This file holds the one architecture table of the project: every other module
(the C4 RoI head, the checkpoint converter, the tools) reads widths and unit
counts from here.
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

from ..layers.channels_last_pool import ChannelsLastPool
from ..layers.shuffle_unit import (check_deploy_options, make_shuffle_stage,
                                   switch_units_to_deploy)

# Stage 2-4 output channels of "ShuffleNet 1x", paper Table 1, keyed by groups.
BASE_CHANNELS = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}
# (stem, Stage 2, 3, 4) channels fixed by the official Megvii release, keyed by (groups, width).
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
GROUPS = tuple(BASE_CHANNELS)
WIDEN_FACTORS = (0.25, 0.5, 1.0, 1.5, 2.0)
# Units in Stages 2, 3 and 4 (paper Table 1); the shallow variant halves them.
STAGE_UNITS = (4, 8, 4)


def _round_to_multiple(value: float, divisor: int) -> int:
    """Nearest positive multiple of ``divisor`` (ties round up)."""
    return max(divisor, int(value / divisor + 0.5) * divisor)


def shufflenet_v1_channels(groups: int = 3, widen_factor: float = 1.0) -> tuple[int, ...]:
    """(stem, Stage 2, Stage 3, Stage 4) channels of ShuffleNet V1 ``widen_factor`` x, g=``groups``.

    The official release's lists where it defines one, else Table 1 x ``widen_factor``
    rounded as :class:`ShuffleNetV1` documents. Configs import this to wire necks and
    heads to the backbone without copying numbers.

    Raises:
        ValueError: for groups or widths outside the allowed values.
    """
    if groups not in GROUPS:
        raise ValueError(f'groups must be one of {GROUPS}, got {groups!r}')
    if widen_factor not in WIDEN_FACTORS:
        raise ValueError(f'widen_factor must be one of {WIDEN_FACTORS}, got {widen_factor!r}')
    if (groups, widen_factor) in OFFICIAL_CHANNELS:
        return OFFICIAL_CHANNELS[(groups, widen_factor)]
    stem = _round_to_multiple(24 * widen_factor, groups)
    stages = tuple(_round_to_multiple(c * widen_factor, 4 * groups) for c in BASE_CHANNELS[groups])
    return (stem, *stages)


def init_like_official(module: nn.Module) -> None:
    """The official code's initialisation: N(0, 1/fan_in) convs (the stem N(0, 0.01)),
    norm layers with weight 1 and bias 1e-4."""
    for name, m in module.named_modules():
        if isinstance(m, nn.Conv2d):
            std = 0.01 if name.startswith('conv1.') else 1.0 / m.weight.shape[1]
            normal_init(m, mean=0, std=std, bias=0)
        elif isinstance(m, (_BatchNorm, nn.GroupNorm)):
            constant_init(m, val=1, bias=1e-4)


def init_shufflenet_weights(module: BaseModule) -> None:
    """``init_weights`` of the backbone and the C4 RoI head.

    ``init_cfg=None`` initialises as the official code does. ``dict(type='Pretrained',
    ...)`` loads strictly through the ``StrictPretrained`` initialiser, and falls back
    to the official initialisation when the file is missing and ``missing_ok`` allows
    it. Any other ``init_cfg`` is MMEngine's.
    """
    cfg = module.init_cfg
    pretrained = isinstance(cfg, Mapping) and cfg.get('type') in ('Pretrained', PretrainedInit)
    if cfg is not None and not pretrained:
        BaseModule.init_weights(module)
        return
    # Strict loading lives in shufflenet_det.checkpoint, registered in MMEngine's
    # WEIGHT_INITIALIZERS as 'StrictPretrained'. Naming it through the registry, instead
    # of importing it, keeps models/ at the bottom of the import graph.
    if not (pretrained and WEIGHT_INITIALIZERS.build(dict(cfg, type='StrictPretrained'))(module)):
        init_like_official(module)
    module._is_init = True


def keep_norms_in_eval(module: nn.Module) -> None:
    """Put every BN layer of ``module`` in eval mode (``norm_eval``)."""
    for m in module.modules():
        if isinstance(m, _BatchNorm):
            m.eval()


@MODELS.register_module()
class ShuffleNetV1(BaseModule):
    """ShuffleNet V1 backbone.

    Channel lists ``(stem, Stage 2, Stage 3, Stage 4)``, as
    :func:`shufflenet_v1_channels` gives them, come from ``OFFICIAL_CHANNELS``
    when the official release defines the ``(groups, widen_factor)`` pair (g=3
    and g=8 at 0.5x-2.0x). Otherwise they are Table 1's 1x widths times
    ``widen_factor``, rounded to the nearest multiple of ``4 * groups`` (so the
    bottleneck, a quarter of the width, splits into ``groups`` equal groups),
    and a stem of ``24 * widen_factor`` rounded to the nearest multiple of
    ``groups``; ties round up. For example 0.5x g=2 is (12, 104, 200, 400) and
    0.25x g=4 is (8, 64, 144, 272).

    Args:
        groups (int): Groups of the pointwise convolutions, one of
            (1, 2, 3, 4, 8). Default: 3.
        widen_factor (float): Width multiplier "s" of "ShuffleNet s x", one of
            (0.25, 0.5, 1.0, 1.5, 2.0). Default: 1.0.
        out_indices (Sequence[int]): Stages whose maps to return, numbered as in
            OpenMMLab's ShuffleNetV1: 0 is Stage 2 (stride 8), 1 Stage 3
            (stride 16), 2 Stage 4 (stride 32); only indices below
            ``num_stages`` exist. Maps come back in stage order. Default: (2, ).
        num_stages (int): How many of Stages 2-4 to build, 1 to 3. A C4
            detector builds 2 (valid ``out_indices`` then 0 and 1) and runs
            Stage 4 per RoI. Default: 3.
        frozen_stages (int): -1 freezes nothing, 0 the stem, k the stem and the
            first k stages; parameters and BN statistics both. Default: -1.
        shuffle (bool): Channel shuffle on (the paper's Table 3 ablation turns it
            off). Default: True.
        shuffle_order (str): 'paper', the paper's permutation, or 'megvii', the
            inverse one that the official code applies. Weights converted from
            the official g=8 0.5x, 1.0x and 1.5x files need 'megvii' (their
            ``meta['arch']`` says so, and loading checks it). Default: 'paper'.
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
        feature_info (list[dict]): For each valid ``out_indices`` value (one
            per built stage), that stage's ``channels``, ``stride`` and
            ``module`` name, recorded while building.
        out_channels (tuple[int]): Channels of each map ``forward`` returns.
        out_strides (tuple[int]): Stride of each map ``forward`` returns.
        deployed (bool): Converted by :meth:`switch_to_deploy` (inference only).
        channels_last (bool): ``forward`` turns its input channels_last (set by
            :meth:`switch_to_deploy`).
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
        self._check_stage_arguments(out_indices, num_stages, frozen_stages)
        self.groups = groups
        self.widen_factor = widen_factor
        self.out_indices = tuple(sorted(out_indices))
        self.num_stages = num_stages
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.shuffle_order = shuffle_order
        self.units_per_stage = tuple(n // 2 for n in STAGE_UNITS) if shallow else STAGE_UNITS
        self.deployed = False
        self.channels_last = False
        # Everything a ShuffleUnit needs beyond its widths; the C4 RoI head reuses it
        # to build Stage 4 exactly as this backbone would.
        self.unit_cfg = dict(shuffle=shuffle, shuffle_order=shuffle_order, with_se=with_se,
                             conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg,
                             with_cp=with_cp)

        stem_channels = self.stage_channels[0]
        self.conv1 = ConvModule(3, stem_channels, 3, stride=2, padding=1,
                                conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.feature_info = []
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

    @staticmethod
    def _check_stage_arguments(out_indices, num_stages, frozen_stages) -> None:
        if num_stages not in (1, 2, 3):
            raise ValueError(f'num_stages must be one of (1, 2, 3), got {num_stages!r}')
        valid_indices = tuple(range(num_stages))
        if (isinstance(out_indices, int) or len(out_indices) == 0
                or not set(out_indices) <= set(valid_indices)
                or len(set(out_indices)) != len(out_indices)):
            stages = ', '.join(f'{i} = Stage {i + 2}' for i in valid_indices)
            raise ValueError(f'out_indices must be a non-empty sequence of distinct values '
                             f'from {valid_indices} (with num_stages={num_stages}; {stages}), '
                             f'got {out_indices!r}')
        if frozen_stages not in range(-1, num_stages + 1):
            raise ValueError(f'frozen_stages must be one of {tuple(range(-1, num_stages + 1))} '
                             f'(with num_stages={num_stages}), got {frozen_stages!r}')

    def init_weights(self) -> None:
        """Load ``init_cfg``'s checkpoint strictly, or initialise as the official code does."""
        init_shufflenet_weights(self)

    def switch_to_deploy(self, memory_format: str = 'channels_last', pointwise: str = 'matmul',
                         fast_shuffle: bool = False, merge_inplace: bool = True,
                         compile: bool = False) -> 'ShuffleNetV1':
        """Convert in place to the CPU inference fast path (BN fused: no training after).

        The defaults were the fastest in ``tools/benchmark.py backbone --ablation``.

        Args:
            memory_format (str): 'contiguous' (NCHW; pools switch to channels_last)
                or 'channels_last' (everything). Default: 'channels_last'.
            pointwise (str): 'matmul' or 'conv', see
                :meth:`ShuffleUnit.switch_to_deploy`. Default: 'matmul'.
            fast_shuffle (bool): ATen's shuffle kernel. Default: False.
            merge_inplace (bool): Each unit's add and ReLU in place. Default: True.
            compile (bool): Also ``torch.compile`` this module. The first call then
                takes tens of seconds (and again for each new input shape), later
                ones are faster. Default: False.

        Returns:
            ShuffleNetV1: ``self``, in eval mode.
        """
        check_deploy_options(memory_format, pointwise)
        if self.deployed:
            return self
        self.eval()
        fuse_conv_bn(self.conv1)
        self.maxpool = ChannelsLastPool(self.maxpool)
        switch_units_to_deploy(self, memory_format, pointwise, fast_shuffle, merge_inplace)
        self.channels_last = memory_format == 'channels_last'
        self.deployed = True
        if compile:
            self.compile()
        return self

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
        frozen += list(self.layers[:max(self.frozen_stages, 0)])
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'ShuffleNetV1':
        """Switch mode, keeping frozen stages and (with ``norm_eval``) BN layers in eval."""
        if mode and self.deployed:
            raise RuntimeError('this ShuffleNetV1 was converted by switch_to_deploy() (BN fused '
                               'into the convolutions) and is for inference only; build a new '
                               'one to train')
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            keep_norms_in_eval(self)
        return self
