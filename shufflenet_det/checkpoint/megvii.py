"""Official Megvii ShuffleNetV1 files: their layout, and the permutation maths of their shuffle.

The official release (github.com/megvii-model/ShuffleNet-Series, ShuffleNetV1/)
differs from :class:`~shufflenet_det.models.ShuffleNetV1` in three ways:

1. Names: ``module.first_conv.{0,1}``, ``module.features.N.branch_main_1.{0,1,3,4}``,
   ``module.features.N.branch_main_2.{0,1}`` and ``module.classifier.0``.
2. The channel shuffle is the inverse of the paper's: channels are read as an
   ``(n, g)`` grid rather than ``(g, n)``. Inside every unit the converter
   reorders the bottleneck channels (rows of the first pointwise and depthwise
   convolutions and their BN layers, which never crosses a group of the first
   pointwise convolution) and the input columns of the second pointwise
   convolution within each of its groups, so that the paper's shuffle gives
   every output unchanged. That is possible exactly when, for every pair of
   groups (first pointwise group a, second pointwise group b), both shuffles
   route the same number of channels from a to b. It holds for every g=3
   release and for 2.0x g=8. For 0.5x, 1.0x and 1.5x g=8 it does not, and the
   weights are written unchanged for ``shuffle_order='megvii'``, which applies
   the official permutation itself.
3. Input: BGR, 0-255, not normalised (:data:`MEGVII_INPUT_CONVENTION`).
"""
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from typing import Optional

import torch
from torch import Tensor

from ..models.backbones import OFFICIAL_CHANNELS, STAGE_UNITS, ShuffleNetV1
from ..models.layers import channel_shuffle_indices, inverse_channel_shuffle_indices
from .formats import (FORMAT_NAMES, MEGVII_FORMAT, ConversionError, arch_meta, check_tensors,
                      describe_architecture, missing_required, strip_module)
from .megvii_reference import STAGE_STARTS, megvii_forward
from .pretrained import load_strict

# mmdet DetDataPreprocessor fields for Megvii's weights: images stay BGR in 0-255.
MEGVII_INPUT_CONVENTION = dict(mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0], bgr_to_rgb=False)
NAN_HINT = ('; some early official files were published broken and replaced later, '
            'so download the file again')
_BN_SUFFIXES = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
# Megvii module index -> this project's module, inside one unit.
_UNIT_LAYERS = {
    'branch_main_1.0': 'g_conv_1x1_compress.conv',
    'branch_main_1.1': 'g_conv_1x1_compress.bn',
    'branch_main_1.3': 'depthwise_conv3x3_bn.conv',
    'branch_main_1.4': 'depthwise_conv3x3_bn.bn',
    'branch_main_2.0': 'g_conv_1x1_expand.conv',
    'branch_main_2.1': 'g_conv_1x1_expand.bn',
}


def strip_megvii_state(state: Mapping[str, Tensor], source: str = 'checkpoint') -> dict:
    """The bare state dict of an official checkpoint (``module.`` prefix removed)."""
    state = {strip_module(k): v for k, v in state.items()}
    absent = missing_required(state, MEGVII_FORMAT)
    if absent:
        raise ConversionError(f'{source} is not {FORMAT_NAMES[MEGVII_FORMAT][0]}: it '
                              f'lacks {", ".join(absent)} (its first keys are: '
                              f'{", ".join(sorted(state)[:5])})')
    return state


def infer_architecture(state: Mapping[str, Tensor]) -> dict:
    """Groups, widen factor and channels of an official checkpoint, read from its shapes."""
    units = sorted({int(k.split('.')[1]) for k in state if k.startswith('features.')})
    if units != list(range(sum(STAGE_UNITS))):
        raise ConversionError(f'expected units features.0 to features.{sum(STAGE_UNITS) - 1} '
                              f'(stages of {STAGE_UNITS} units), found {units}')
    stem = state['first_conv.0.weight'].shape[0]
    widths = [4 * state[f'features.{i}.branch_main_1.0.weight'].shape[0] for i in STAGE_STARTS]
    groups = widths[0] // 4 // state['features.0.branch_main_2.0.weight'].shape[1]
    channels = (stem, *widths)
    for (g, widen), official in OFFICIAL_CHANNELS.items():
        if g == groups and official == channels:
            return dict(groups=groups, widen_factor=widen, channels=channels)
    raise ConversionError(f'channels {channels} with groups={groups} match no official '
                          f'release; known: {sorted(OFFICIAL_CHANNELS.items())}')


def _routes(mid: int, groups: int, first_groups: int) -> tuple[dict, dict]:
    """For each shuffle, (first-conv group, expand group) -> bottleneck channels routed there."""
    per_group, per_first = mid // groups, mid // first_groups
    routes = ({}, {})
    for order, table in zip((channel_shuffle_indices(mid, groups),
                             inverse_channel_shuffle_indices(mid, groups)), routes):
        grouped = defaultdict(list)
        for slot, channel in enumerate(order):
            grouped[channel // per_first, slot // per_group].append(channel)
        table.update(grouped)
    return routes


def paper_order_mismatch(mid: int, groups: int, first_groups: int) -> Optional[str]:
    """Why no reordering turns Megvii's unit into the paper-shuffle unit, or None if one does."""
    ours, theirs = _routes(mid, groups, first_groups)
    count_ours = Counter({k: len(v) for k, v in ours.items()})
    count_theirs = Counter({k: len(v) for k, v in theirs.items()})
    if count_ours == count_theirs:
        return None
    (a, b), n = next((k, v) for k, v in sorted(count_theirs.items()) if count_ours[k] != v)
    return (f'Megvii\'s inverse channel shuffle sends {n} channels from group {a} of the first '
            f'1x1 conv to group {b} of the second, where the paper\'s shuffle sends '
            f'{count_ours[a, b]} (bottleneck {mid}, g={groups}), and reordering weights inside '
            'grouped convolutions cannot change such counts')


def _reorder_unit(mid: int, groups: int, first_groups: int) -> tuple[Tensor, Tensor]:
    """Bottleneck order and expand-column order that turn Megvii's unit into the paper's.

    Returns:
        (src, col): our bottleneck channel ``q`` takes Megvii's channel ``src[q]``;
        our expand input slot ``s`` takes Megvii's expand input slot ``col[s]``
        (always within the same group).
    """
    ours, theirs = _routes(mid, groups, first_groups)
    src = [0] * mid
    for key, channels in ours.items():
        for q, old in zip(channels, theirs[key]):
            src[q] = old
    slot_of = {channel: s for s, channel in enumerate(inverse_channel_shuffle_indices(mid, groups))}
    paper = channel_shuffle_indices(mid, groups)
    return torch.tensor(src), torch.tensor([slot_of[src[paper[s]]] for s in range(mid)])


def _unit_tensors(state: Mapping[str, Tensor], index: int) -> dict[str, Tensor]:
    """Unit ``features.index`` under this project's names (copies)."""
    unit = {}
    for megvii_layer, our_layer in _UNIT_LAYERS.items():
        for k, v in state.items():
            if k.startswith(f'features.{index}.{megvii_layer}.'):
                unit[f'{our_layer}.{k.rsplit(".", 1)[1]}'] = v.clone()
    return unit


def _apply_paper_order(unit: dict[str, Tensor], groups: int, first_groups: int) -> None:
    """Reorder one unit's tensors in place so that the paper's shuffle computes Megvii's unit."""
    mid = unit['g_conv_1x1_compress.conv.weight'].shape[0]
    src, col = _reorder_unit(mid, groups, first_groups)
    for layer in ('g_conv_1x1_compress', 'depthwise_conv3x3_bn'):
        for suffix in ('conv.weight', *(f'bn.{s}' for s in _BN_SUFFIXES[:4])):
            unit[f'{layer}.{suffix}'] = unit[f'{layer}.{suffix}'][src]
    # Column j of expand group b is input slot b * per_group + j.
    expand = unit['g_conv_1x1_expand.conv.weight']
    per_group, per_out = mid // groups, expand.shape[0] // groups
    new_expand = torch.empty_like(expand)
    for b in range(groups):
        cols = col[b * per_group:(b + 1) * per_group] - b * per_group
        rows = slice(b * per_out, (b + 1) * per_out)
        new_expand[rows] = expand[rows][:, cols]
    unit['g_conv_1x1_expand.conv.weight'] = new_expand


def choose_shuffle_order(state: Mapping[str, Tensor], groups: int) -> tuple[str, Optional[str]]:
    """'paper' if every unit can be reordered exactly, else 'megvii' with the reason."""
    for index in range(sum(STAGE_UNITS)):
        mid = state[f'features.{index}.branch_main_1.0.weight'].shape[0]
        reason = paper_order_mismatch(mid, groups, 1 if index == 0 else groups)
        if reason is not None:
            return 'megvii', f'unit {index}: {reason}'
    return 'paper', None


def convert_megvii_state(state: Mapping[str, Tensor], arch: Mapping,
                         progress: Callable[[str], None] = print) -> dict[str, Tensor]:
    """``backbone.*`` and ``head.fc.*`` tensors in the OpenMMLab classifier layout.

    Args:
        state (Mapping[str, Tensor]): From :func:`strip_megvii_state`.
        arch (Mapping): ``groups`` and ``shuffle_order``; 'paper' reorders every unit.
        progress (callable): Called with a message per converted unit.
    """
    out = {}
    for i, name in enumerate(('conv', 'bn')):
        for k, v in state.items():
            if k.startswith(f'first_conv.{i}.'):
                out[f'backbone.conv1.{name}.{k.rsplit(".", 1)[1]}'] = v.clone()
    for index in range(sum(STAGE_UNITS)):
        stage = sum(index >= start for start in STAGE_STARTS) - 1
        ours = f'layers.{stage}.{index - STAGE_STARTS[stage]}'
        unit = _unit_tensors(state, index)
        if arch['shuffle_order'] == 'paper':
            _apply_paper_order(unit, arch['groups'], 1 if index == 0 else arch['groups'])
        out.update({f'backbone.{ours}.{k}': v for k, v in unit.items()})
        progress(f'unit {index + 1}/{sum(STAGE_UNITS)} -> {ours}')
    fc = state['classifier.0.weight']
    out['head.fc.weight'] = fc.clone()
    out['head.fc.bias'] = state.get('classifier.0.bias', torch.zeros(fc.shape[0], dtype=fc.dtype))
    return out


def verify_against_official(state: Mapping[str, Tensor], converted: Mapping[str, Tensor],
                            arch: Mapping, source: str) -> float:
    """Largest Stage 2-4 map difference between the converted backbone and the official one."""
    backbone = ShuffleNetV1(groups=arch['groups'], widen_factor=arch['widen_factor'],
                            out_indices=(0, 1, 2), shuffle_order=arch['shuffle_order'])
    load_strict(backbone, {k[len('backbone.'):]: v for k, v in converted.items()
                           if k.startswith('backbone.')}, f'converted {source}')
    backbone.eval()
    image = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        ours, theirs = backbone(image), megvii_forward(state, image, arch['groups'])
    return max((a - b).abs().max().item() for a, b in zip(ours, theirs))


def convert_megvii(src: str, dst: str, state: Mapping[str, Tensor], arch: dict,
                   progress: Callable[[str], None], tolerance: float) -> tuple[dict, dict]:
    """Convert a stripped official state dict and verify it; returns (state dict, ``meta``).

    Raises:
        ConversionError: the converted features differ from the official network's by
            more than ``tolerance``.
    """
    order, reason = choose_shuffle_order(state, arch['groups'])
    arch['shuffle_order'] = order
    if reason:
        progress(f'{reason}. The weights are kept in the official order, for a backbone '
                 "built with shuffle_order='megvii' (recorded in the file's meta['arch'])")
    converted = convert_megvii_state(state, arch, progress)
    name = describe_architecture(arch['groups'], arch['widen_factor'])
    progress(f"verifying {name}, shuffle_order='{order}', against the official network")
    diff = verify_against_official(state, converted, arch, src)
    if not diff <= tolerance:
        raise ConversionError(f'converted features differ from the official network by '
                              f'{diff:.3g} (tolerance {tolerance}); {dst} was not written')
    progress(f'max feature difference {diff:.2e}')
    return converted, dict(source='megvii-model/ShuffleNet-Series', converted_from=str(src),
                           arch=arch_meta(arch), input_convention=dict(MEGVII_INPUT_CONVENTION),
                           verified_max_abs_diff=diff)


def prepare_megvii(state: Mapping[str, Tensor], source: str) -> tuple[dict, dict]:
    """The stripped, checked state dict of an official file, and its architecture."""
    state = strip_megvii_state(state, source)
    check_tensors(state, NAN_HINT)
    return state, infer_architecture(state)
