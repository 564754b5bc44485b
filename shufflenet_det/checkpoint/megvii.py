"""Official Megvii ShuffleNetV1 weights (github.com/megvii-model/ShuffleNet-Series): their
names, their shuffle, and their network.

Their channel shuffle is the inverse of the paper's. Inside every unit the converter reorders
the bottleneck channels and the input columns of the second pointwise convolution within each
of its groups, so that the paper's shuffle gives every output unchanged. That is possible
exactly when both shuffles route the same number of channels from each group of the first
pointwise convolution to each group of the second: for every g=3 release and 2.0x g=8. The
other g=8 files are kept for ``shuffle_order='megvii'``, which applies the official shuffle.
:func:`megvii_forward`, written from the release's format rather than from this project's
modules, is the network a conversion is checked against.
"""
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from itertools import accumulate
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..models.backbones import STAGE_UNITS
from ..models.layers import (channel_shuffle_indices, inverse_channel_shuffle,
                             inverse_channel_shuffle_indices)

# mmdet DetDataPreprocessor fields for Megvii's weights: images stay BGR in 0-255.
MEGVII_INPUT_CONVENTION = dict(mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0], bgr_to_rgb=False)
# Index of each stage's first (stride-2) and last unit in ``features.N``.
STAGE_STARTS = tuple(accumulate(STAGE_UNITS, initial=0))[:-1]
STAGE_ENDS = tuple(n - 1 for n in accumulate(STAGE_UNITS))
# Megvii module index -> this project's module, inside one unit.
_UNIT_LAYERS = {
    'branch_main_1.0': 'g_conv_1x1_compress.conv',
    'branch_main_1.1': 'g_conv_1x1_compress.bn',
    'branch_main_1.3': 'depthwise_conv3x3_bn.conv',
    'branch_main_1.4': 'depthwise_conv3x3_bn.bn',
    'branch_main_2.0': 'g_conv_1x1_expand.conv',
    'branch_main_2.1': 'g_conv_1x1_expand.bn',
}


def megvii_forward(state: Mapping[str, Tensor], x: Tensor, groups: int) -> list[Tensor]:
    """Stage 2, 3 and 4 outputs of the official network (``module.``-stripped ``state``, g
    ``groups``, eval mode) for BGR images ``x`` in 0-255."""
    def bn(y, prefix):
        return F.batch_norm(y, state[f'{prefix}.running_mean'], state[f'{prefix}.running_var'],
                            state[f'{prefix}.weight'], state[f'{prefix}.bias'], eps=1e-5)

    y = F.relu(bn(F.conv2d(x, state['first_conv.0.weight'], stride=2, padding=1), 'first_conv.1'))
    y = F.max_pool2d(y, 3, 2, 1)
    feats = []
    for index in range(sum(STAGE_UNITS)):
        p = f'features.{index}'
        stride = 2 if index in STAGE_STARTS else 1
        w1, wd, w2 = (state[f'{p}.branch_main_{k}.weight'] for k in ('1.0', '1.3', '2.0'))
        b = F.conv2d(y, w1, groups=y.shape[1] // w1.shape[1])
        b = F.relu(bn(b, f'{p}.branch_main_1.1'))
        b = bn(F.conv2d(b, wd, stride=stride, padding=1, groups=b.shape[1]), f'{p}.branch_main_1.4')
        b = inverse_channel_shuffle(b, groups)
        b = bn(F.conv2d(b, w2, groups=groups), f'{p}.branch_main_2.1')
        y = torch.cat((F.avg_pool2d(y, 3, 2, 1), F.relu(b)), 1) if stride == 2 else F.relu(y + b)
        if index in STAGE_ENDS:
            feats.append(y)
    return feats


def _routes(mid: int, groups: int, first_groups: int) -> tuple[dict, dict]:
    """For the paper's and Megvii's shuffle: (first-conv group, expand group) -> the
    bottleneck channels routed there."""
    per_group, per_first = mid // groups, mid // first_groups
    routes = []
    for order in (channel_shuffle_indices(mid, groups),
                  inverse_channel_shuffle_indices(mid, groups)):
        grouped = defaultdict(list)
        for slot, channel in enumerate(order):
            grouped[channel // per_first, slot // per_group].append(channel)
        routes.append(grouped)
    return tuple(routes)


def choose_shuffle_order(state: Mapping[str, Tensor], groups: int) -> tuple[str, Optional[str]]:
    """'paper' if every unit can be reordered exactly, else 'megvii' with the reason."""
    for index in range(sum(STAGE_UNITS)):
        mid = state[f'features.{index}.branch_main_1.0.weight'].shape[0]
        ours, theirs = (Counter({k: len(v) for k, v in r.items()})
                        for r in _routes(mid, groups, 1 if index == 0 else groups))
        if ours != theirs:
            (a, b), n = next((k, v) for k, v in sorted(theirs.items()) if ours[k] != v)
            return 'megvii', (
                f'unit {index}: Megvii\'s inverse channel shuffle sends {n} channels from group '
                f'{a} of the first 1x1 conv to group {b} of the second, where the paper\'s '
                f'shuffle sends {ours[a, b]} (bottleneck {mid}, g={groups}), and reordering '
                'weights inside grouped convolutions cannot change such counts')
    return 'paper', None


def _apply_paper_order(unit: dict[str, Tensor], groups: int, first_groups: int) -> None:
    """Reorder one unit's tensors in place so that the paper's shuffle computes Megvii's unit.

    Our bottleneck channel ``q`` takes Megvii's channel ``src[q]``; our expand input slot
    ``s`` takes Megvii's slot ``col[s]``, always within the same group.
    """
    mid = unit['g_conv_1x1_compress.conv.weight'].shape[0]
    ours, theirs = _routes(mid, groups, first_groups)
    src = [0] * mid
    for key, channels in ours.items():
        for q, old in zip(channels, theirs[key]):
            src[q] = old
    slot_of = {c: s for s, c in enumerate(inverse_channel_shuffle_indices(mid, groups))}
    paper = channel_shuffle_indices(mid, groups)
    col = torch.tensor([slot_of[src[paper[s]]] for s in range(mid)])
    for layer in ('g_conv_1x1_compress', 'depthwise_conv3x3_bn'):
        for suffix in ('conv.weight', 'bn.weight', 'bn.bias', 'bn.running_mean',
                       'bn.running_var'):
            unit[f'{layer}.{suffix}'] = unit[f'{layer}.{suffix}'][torch.tensor(src)]
    expand = unit['g_conv_1x1_expand.conv.weight']
    per_group, per_out = mid // groups, expand.shape[0] // groups
    new_expand = torch.empty_like(expand)
    for b in range(groups):  # column j of expand group b is input slot b * per_group + j
        rows = slice(b * per_out, (b + 1) * per_out)
        new_expand[rows] = expand[rows][:, col[b * per_group:(b + 1) * per_group] - b * per_group]
    unit['g_conv_1x1_expand.conv.weight'] = new_expand


def convert_megvii_state(state: Mapping[str, Tensor], arch: Mapping,
                         progress: Callable[[str], None] = print) -> dict[str, Tensor]:
    """The official tensors (``module.`` stripped) as ``backbone.*`` and ``head.fc.*`` of the
    OpenMMLab classifier layout, each unit reordered if ``arch['shuffle_order']`` is 'paper'."""
    out = {}
    for i, name in enumerate(('conv', 'bn')):
        for k, v in state.items():
            if k.startswith(f'first_conv.{i}.'):
                out[f'backbone.conv1.{name}.{k.rsplit(".", 1)[1]}'] = v.clone()
    for index in range(sum(STAGE_UNITS)):
        stage = sum(index >= start for start in STAGE_STARTS) - 1
        ours = f'layers.{stage}.{index - STAGE_STARTS[stage]}'
        unit = {f'{our_layer}.{k.rsplit(".", 1)[1]}': v.clone()
                for megvii_layer, our_layer in _UNIT_LAYERS.items()
                for k, v in state.items() if k.startswith(f'features.{index}.{megvii_layer}.')}
        if arch['shuffle_order'] == 'paper':
            _apply_paper_order(unit, arch['groups'], 1 if index == 0 else arch['groups'])
        out.update({f'backbone.{ours}.{k}': v for k, v in unit.items()})
        progress(f'unit {index + 1}/{sum(STAGE_UNITS)} -> {ours}')
    fc = state['classifier.0.weight']
    out['head.fc.weight'] = fc.clone()
    out['head.fc.bias'] = state.get('classifier.0.bias', torch.zeros(fc.shape[0], dtype=fc.dtype))
    return out
