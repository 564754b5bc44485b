"""Convert official Megvii ShuffleNetV1 checkpoints to this project's layout.

The official release (github.com/megvii-model/ShuffleNet-Series, ShuffleNetV1/)
differs from :class:`~shufflenet_det.models.ShuffleNetV1` in three ways:

1. Names: ``module.first_conv.{0,1}``, ``module.features.N.branch_main_1.{0,1,3,4}``,
   ``module.features.N.branch_main_2.{0,1}`` and ``module.classifier.0``.
2. The channel shuffle is the inverse of the paper's: channels are read as an
   ``(n, g)`` grid rather than ``(g, n)``. Inside every unit the converter
   reorders the bottleneck channels (rows of the first pointwise and depthwise
   convolutions and their BN layers, which never crosses a group of the first
   pointwise convolution) and the input columns of the second pointwise
   convolution within each of its groups, so that every output is unchanged.
   That is possible exactly when, for every pair of groups (first pointwise
   group a, second pointwise group b), both shuffles route the same number of
   channels from a to b. It holds for every g=3 release and for 2.0x g=8, and
   fails for 0.5x, 1.0x and 1.5x g=8, which are refused with that reason.
3. Input: BGR, 0-255, not normalised. The converted file records this under
   ``meta['input_convention']`` in the fields of MMDetection's data preprocessor.
"""
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..models.layers.channel_shuffle import channel_shuffle, channel_shuffle_indices

# mmdet DetDataPreprocessor fields for Megvii's weights: images stay BGR in 0-255.
MEGVII_INPUT_CONVENTION = dict(mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0], bgr_to_rgb=False)
# OpenMMLab's ImageNet weights: RGB, normalised with ImageNet statistics (0-255 scale).
OPENMMLAB_INPUT_CONVENTION = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                                  bgr_to_rgb=True)

_STAGE_UNITS = (4, 8, 4)
_STAGE_STARTS = (0, 4, 12)  # index of each stage's first (stride-2) unit in features.N
_STAGE_ENDS = (3, 11, 15)
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


class ConversionError(ValueError):
    """The file is not an official ShuffleNetV1 checkpoint, or cannot be converted exactly."""


def megvii_shuffle(x: Tensor, groups: int) -> Tensor:
    """Megvii's channel shuffle: the inverse of the paper's permutation."""
    return channel_shuffle(x, x.shape[1] // groups)


def _unit_key(index: int) -> str:
    stage = sum(index >= start for start in _STAGE_STARTS) - 1
    return f'layers.{stage}.{index - _STAGE_STARTS[stage]}'


def strip_megvii_state(ckpt, source: str = 'checkpoint') -> dict[str, Tensor]:
    """The bare state dict of an official checkpoint (``module.`` prefix removed)."""
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, Mapping) else None
    if not isinstance(state, Mapping):
        raise ConversionError(f'{source} holds {type(ckpt).__name__}, not a state dict')
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    expected = ('first_conv.0.weight', 'features.0.branch_main_1.0.weight', 'classifier.0.weight')
    absent = [k for k in expected if k not in state]
    if absent:
        shown = ', '.join(sorted(state)[:5])
        raise ConversionError(
            f'{source} is not an official Megvii ShuffleNetV1 checkpoint: it lacks '
            f'{", ".join("module." + k for k in absent)} (its first keys are: {shown})')
    return state


def infer_architecture(state: Mapping[str, Tensor]) -> dict:
    """Groups, widen factor and channels of an official checkpoint, read from its shapes."""
    from ..models.backbones.shufflenet_v1 import ShuffleNetV1

    units = sorted({int(k.split('.')[1]) for k in state if k.startswith('features.')})
    if units != list(range(sum(_STAGE_UNITS))):
        raise ConversionError(f'expected units features.0 to features.{sum(_STAGE_UNITS) - 1} '
                              f'(stages of {_STAGE_UNITS} units), found {units}')
    stem = state['first_conv.0.weight'].shape[0]
    widths = [4 * state[f'features.{i}.branch_main_1.0.weight'].shape[0] for i in _STAGE_STARTS]
    mid = widths[0] // 4
    groups = mid // state['features.0.branch_main_2.0.weight'].shape[1]
    channels = (stem, *widths)
    for (g, widen), official in ShuffleNetV1.official_channels.items():
        if g == groups and official == channels:
            return dict(groups=groups, widen_factor=widen, channels=channels)
    raise ConversionError(f'channels {channels} with groups={groups} match no official '
                          f'release; known: {sorted(ShuffleNetV1.official_channels.items())}')


def _reorder_unit(mid: int, groups: int, first_conv_groups: int,
                  unit: str) -> tuple[list[int], list[int]]:
    """Bottleneck order and expand-column order that turn Megvii's unit into ours.

    Returns:
        (src, col): our bottleneck channel ``q`` takes Megvii's channel ``src[q]``;
        our expand input slot ``s`` takes Megvii's expand input slot ``col[s]``
        (always within the same group).
    """
    per_group = mid // groups
    per_first = mid // first_conv_groups
    ours = channel_shuffle_indices(mid, groups)       # slot s reads bottleneck channel ours[s]
    theirs = channel_shuffle_indices(mid, per_group)  # Megvii's inverse shuffle
    routes_theirs = defaultdict(list)                 # (first group, expand group) -> channels
    routes_ours = defaultdict(list)
    for s in range(mid):
        routes_theirs[theirs[s] // per_first, s // per_group].append(theirs[s])
        routes_ours[ours[s] // per_first, s // per_group].append(ours[s])
    count_theirs = Counter({k: len(v) for k, v in routes_theirs.items()})
    count_ours = Counter({k: len(v) for k, v in routes_ours.items()})
    if count_theirs != count_ours:
        (a, b), n = next((k, v) for k, v in sorted(count_theirs.items()) if count_ours[k] != v)
        raise ConversionError(
            f'{unit}: Megvii applies the inverse channel shuffle, which sends {n} channels from '
            f'group {a} of the first 1x1 conv to group {b} of the second, where the paper\'s '
            f'shuffle sends {count_ours[a, b]} (bottleneck {mid}, g={groups}). Reordering '
            f'weights inside grouped convolutions cannot change such counts, so this '
            f'checkpoint has no exact equivalent in the paper-shuffle network. Exact '
            f'conversions exist for every g=3 release and for 2.0x g=8.')
    src = [0] * mid
    for key, positions in routes_ours.items():
        for q, old in zip(positions, routes_theirs[key]):
            src[q] = old
    slot_of = {channel: s for s, channel in enumerate(theirs)}
    col = [slot_of[src[ours[s]]] for s in range(mid)]
    return src, col


def convert_megvii_state(state: Mapping[str, Tensor],
                         progress: Optional[Callable[[str], None]] = None) -> tuple[dict, dict]:
    """Convert a stripped official state dict.

    Args:
        state (Mapping[str, Tensor]): From :func:`strip_megvii_state`.
        progress (callable, optional): Called with a message per converted unit.

    Returns:
        (new_state, arch): ``backbone.*`` and ``head.fc.*`` tensors in the
        OpenMMLab classifier layout, and the architecture found.

    Raises:
        ConversionError: on non-finite values, an unknown architecture, or a
            shuffle that cannot be matched exactly.
    """
    bad = sorted(k for k, v in state.items() if v.is_floating_point() and not v.isfinite().all())
    if bad:
        raise ConversionError(f'{len(bad)} tensors hold NaN or inf values ({", ".join(bad[:4])}); '
                              'some early official files were published broken and replaced '
                              'later, so download the file again')
    arch = infer_architecture(state)
    groups = arch['groups']
    out = {}
    for i, name in enumerate(('conv', 'bn')):
        for k, v in state.items():
            if k.startswith(f'first_conv.{i}.'):
                out[f'backbone.conv1.{name}.{k.rsplit(".", 1)[1]}'] = v.clone()
    for index in range(sum(_STAGE_UNITS)):
        ours = _unit_key(index)
        unit = {}
        for megvii_layer, our_layer in _UNIT_LAYERS.items():
            for k, v in state.items():
                if k.startswith(f'features.{index}.{megvii_layer}.'):
                    unit[f'{our_layer}.{k.rsplit(".", 1)[1]}'] = v.clone()
        mid = unit['g_conv_1x1_compress.conv.weight'].shape[0]
        first_groups = 1 if index == 0 else groups
        src, col = _reorder_unit(mid, groups, first_groups, f'unit {index} ({ours})')
        src_t, col_t = torch.tensor(src), torch.tensor(col)
        for layer in ('g_conv_1x1_compress', 'depthwise_conv3x3_bn'):
            for suffix in ('conv.weight', *(f'bn.{s}' for s in _BN_SUFFIXES[:4])):
                unit[f'{layer}.{suffix}'] = unit[f'{layer}.{suffix}'][src_t]
        # Column j of expand group b is input slot b * per_group + j.
        expand = unit['g_conv_1x1_expand.conv.weight']
        per_group, per_out = mid // groups, expand.shape[0] // groups
        new_expand = torch.empty_like(expand)
        for b in range(groups):
            cols = col_t[b * per_group:(b + 1) * per_group] - b * per_group
            rows = slice(b * per_out, (b + 1) * per_out)
            new_expand[rows] = expand[rows][:, cols]
        unit['g_conv_1x1_expand.conv.weight'] = new_expand
        out.update({f'backbone.{ours}.{k}': v for k, v in unit.items()})
        if progress is not None:
            progress(f'unit {index + 1}/{sum(_STAGE_UNITS)} -> {ours}')
    fc = state['classifier.0.weight']
    out['head.fc.weight'] = fc.clone()
    out['head.fc.bias'] = state.get('classifier.0.bias', torch.zeros(fc.shape[0], dtype=fc.dtype))
    return out, arch


def megvii_forward(state: Mapping[str, Tensor], x: Tensor, groups: int) -> list[Tensor]:
    """Run the official network from its state dict (eval mode); used to verify conversions.

    Returns the stem output after max-pooling and the output of each stage.
    """
    def bn(y, prefix):
        return F.batch_norm(y, state[f'{prefix}.running_mean'], state[f'{prefix}.running_var'],
                            state[f'{prefix}.weight'], state[f'{prefix}.bias'], eps=1e-5)

    y = F.relu(bn(F.conv2d(x, state['first_conv.0.weight'], stride=2, padding=1), 'first_conv.1'))
    y = F.max_pool2d(y, 3, 2, 1)
    feats = [y]
    for index in range(sum(_STAGE_UNITS)):
        p = f'features.{index}'
        stride = 2 if index in _STAGE_STARTS else 1
        w1, wd, w2 = (state[f'{p}.branch_main_{k}.weight'] for k in ('1.0', '1.3', '2.0'))
        b = F.conv2d(y, w1, groups=y.shape[1] // w1.shape[1])
        b = F.relu(bn(b, f'{p}.branch_main_1.1'))
        b = bn(F.conv2d(b, wd, stride=stride, padding=1, groups=b.shape[1]), f'{p}.branch_main_1.4')
        b = megvii_shuffle(b, groups)
        b = bn(F.conv2d(b, w2, groups=groups), f'{p}.branch_main_2.1')
        y = torch.cat((F.avg_pool2d(y, 3, 2, 1), F.relu(b)), 1) if stride == 2 else F.relu(y + b)
        if index in _STAGE_ENDS:
            feats.append(y)
    return feats


def convert_file(src: str, dst: str, progress: Callable[[str], None] = print,
                 tolerance: float = 1e-4) -> dict:
    """Convert the official checkpoint ``src`` into ``dst``, verified before it is written.

    The converted backbone and the official network (run from ``src``'s tensors by
    :func:`megvii_forward`) see the same random BGR 0-255 image; every feature map
    must agree to ``tolerance``. ``dst`` is only written once that holds.

    Returns:
        dict: the ``meta`` stored in ``dst`` (architecture, input convention, max
        difference found).
    """
    from ..models.backbones.shufflenet_v1 import ShuffleNetV1
    from .io import atomic_save
    from .pretrained import load_strict

    if not os.path.isfile(src):
        raise FileNotFoundError(f'no such checkpoint file: {src}')
    progress(f'reading {src}')
    try:
        ckpt = torch.load(src, map_location='cpu', weights_only=True)
    except Exception as exc:  # pickle and zip errors differ by file; say which file
        raise ConversionError(f'{src} could not be read as a PyTorch checkpoint: {exc}') from exc
    state = strip_megvii_state(ckpt, src)
    new_state, arch = convert_megvii_state(state, progress)
    groups, widen = arch['groups'], arch['widen_factor']
    progress(f'verifying {widen}x g={groups} against the official network')
    backbone = ShuffleNetV1(groups=groups, widen_factor=widen, out_indices=(0, 1, 2, 3))
    load_strict(backbone, {k[len('backbone.'):]: v for k, v in new_state.items()
                           if k.startswith('backbone.')}, f'converted {src}')
    backbone.eval()
    image = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        ours = backbone(image)
        theirs = megvii_forward(state, image, groups)
    diff = max((a - b).abs().max().item() for a, b in zip(ours, theirs))
    if not diff <= tolerance:
        raise ConversionError(f'converted features differ from the official network by {diff:.3g} '
                              f'(tolerance {tolerance}); {dst} was not written')
    meta = dict(source='megvii-model/ShuffleNet-Series', converted_from=str(src),
                arch=dict(type='ShuffleNetV1', groups=groups, widen_factor=widen),
                input_convention=dict(MEGVII_INPUT_CONVENTION),
                verified_max_abs_diff=diff)
    atomic_save(dict(state_dict=new_state, meta=meta), dst)
    progress(f'wrote {dst}: {widen}x g={groups}, max feature difference {diff:.2e}; '
             f'input convention {meta["input_convention"]}')
    return meta
