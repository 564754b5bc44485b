"""Convert ShuffleNetV1 ImageNet checkpoints to this project's layout.

Two formats are accepted, told apart by their keys (:func:`detect_format`):

* **Official Megvii** files (github.com/megvii-model/ShuffleNet-Series,
  ShuffleNetV1/), keys ``module.first_conv.*``, ``module.features.N.branch_main_*``
  and ``module.classifier.0.*``, are converted (:func:`convert_megvii_state`) and
  verified feature by feature against the official network
  (:func:`megvii_forward`).
* **OpenMMLab** ShuffleNetV1 classifier files, keys ``backbone.conv1.*``,
  ``backbone.layers.S.U.*`` and ``head.fc.*`` (bare or under ``state_dict``),
  already have this project's layout; they are checked to load strictly into a
  :class:`~shufflenet_det.models.ShuffleNetClassifier` and written unchanged.

Either way the architecture is read from the tensor shapes, and
:func:`convert_file` refuses a file whose architecture differs from the one the
caller requested (:func:`check_requested_architecture`). The output records it,
with the input convention of the weights, in ``meta``.

The official release differs from :class:`~shufflenet_det.models.ShuffleNetV1`
in three ways:

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
   OpenMMLab's weights expect RGB input normalised with ImageNet statistics
   (:data:`OPENMMLAB_INPUT_CONVENTION`).
"""
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..models.layers.channel_shuffle import channel_shuffle, channel_shuffle_indices
from .io import CheckpointFileError, load_checkpoint_file

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

MEGVII_FORMAT = 'megvii'
OPENMMLAB_FORMAT = 'openmmlab'
# Key prefixes that make a state dict look like each format (Megvii's without ``module.``).
_FORMAT_PREFIXES = {
    MEGVII_FORMAT: ('first_conv.', 'features.', 'classifier.'),
    OPENMMLAB_FORMAT: ('backbone.', 'head.'),
}
# Keys each format must hold, spelled as they appear in the file.
_REQUIRED_KEYS = {
    MEGVII_FORMAT: ('module.first_conv.0.weight', 'module.features.0.branch_main_1.0.weight',
                    'module.classifier.0.weight'),
    OPENMMLAB_FORMAT: ('backbone.conv1.conv.weight',
                       'backbone.layers.0.0.g_conv_1x1_compress.conv.weight', 'head.fc.weight'),
}
_FORMAT_NAMES = {
    MEGVII_FORMAT: 'an official Megvii ShuffleNetV1 checkpoint',
    OPENMMLAB_FORMAT: 'an OpenMMLab ShuffleNetV1 classifier checkpoint',
}
_MEGVII_NAN_HINT = ('; some early official files were published broken and replaced later, '
                    'so download the file again')
ACCEPTED_FORMATS = ('official Megvii ShuffleNetV1 checkpoints (keys module.first_conv.*, '
                    'module.features.N.branch_main_*, module.classifier.0.*) and OpenMMLab '
                    'ShuffleNetV1 classifier checkpoints (keys backbone.conv1.*, '
                    'backbone.layers.S.U.*, head.fc.*)')


class ConversionError(ValueError):
    """The file is in neither accepted format, is not the requested architecture, or
    cannot be converted exactly."""


def megvii_shuffle(x: Tensor, groups: int) -> Tensor:
    """Megvii's channel shuffle: the inverse of the paper's permutation."""
    return channel_shuffle(x, x.shape[1] // groups)


def _unit_key(index: int) -> str:
    stage = sum(index >= start for start in _STAGE_STARTS) - 1
    return f'layers.{stage}.{index - _STAGE_STARTS[stage]}'


def _strip_module(key: str) -> str:
    """``key`` without a leading ``module.`` (the prefix DataParallel adds)."""
    return key[len('module.'):] if key.startswith('module.') else key


def unwrap_state(ckpt, source: str = 'checkpoint') -> dict[str, Tensor]:
    """The state dict of a loaded checkpoint: ``ckpt['state_dict']``, or ``ckpt`` itself.

    Raises:
        ConversionError: ``ckpt`` holds no mapping there.
    """
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, Mapping) else None
    if not isinstance(state, Mapping):
        raise ConversionError(f'{source} holds {type(ckpt).__name__}, not a state dict')
    return dict(state)


def strip_megvii_state(ckpt, source: str = 'checkpoint') -> dict[str, Tensor]:
    """The bare state dict of an official checkpoint (``module.`` prefix removed)."""
    state = {_strip_module(k): v for k, v in unwrap_state(ckpt, source).items()}
    absent = [k for k in _REQUIRED_KEYS[MEGVII_FORMAT] if _strip_module(k) not in state]
    if absent:
        shown = ', '.join(sorted(state)[:5])
        raise ConversionError(
            f'{source} is not an official Megvii ShuffleNetV1 checkpoint: it lacks '
            f'{", ".join(absent)} (its first keys are: {shown})')
    return state


def detect_format(state: Mapping[str, Tensor], source: str = 'checkpoint') -> str:
    """Which accepted format a state dict is in, told from its keys.

    Args:
        state (Mapping[str, Tensor]): From :func:`unwrap_state`.
        source (str): Where ``state`` came from, for the error message.

    Returns:
        str: :data:`MEGVII_FORMAT` or :data:`OPENMMLAB_FORMAT`.

    Raises:
        ConversionError: the keys are of neither format, of both, or of one but
            without all its required keys; the message names both accepted formats.
    """
    keys = {MEGVII_FORMAT: {_strip_module(str(k)) for k in state},
            OPENMMLAB_FORMAT: {str(k) for k in state}}
    looks_like = [fmt for fmt, prefixes in _FORMAT_PREFIXES.items()
                  if any(k.startswith(prefixes) for k in keys[fmt])]
    if len(looks_like) == 1:
        fmt = looks_like[0]
        absent = [k for k in _REQUIRED_KEYS[fmt]
                  if (_strip_module(k) if fmt == MEGVII_FORMAT else k) not in keys[fmt]]
        if not absent:
            return fmt
        problem = f'is not {_FORMAT_NAMES[fmt]}: it lacks {", ".join(absent)}'
    elif looks_like:
        problem = 'mixes keys of both accepted formats'
    else:
        problem = (f'is neither {_FORMAT_NAMES[MEGVII_FORMAT]} nor '
                   f'{_FORMAT_NAMES[OPENMMLAB_FORMAT]}')
    shown = ', '.join(sorted(str(k) for k in state)[:5]) or 'none'
    raise ConversionError(f'{source} {problem} (its first keys are: {shown}); the converter '
                          f'accepts {ACCEPTED_FORMATS}')


def describe_architecture(groups: Optional[int] = None,
                          widen_factor: Optional[float] = None) -> str:
    """``'1.0x g=3'``, or just the part that is given (``'g=8'``, ``'2.0x'``)."""
    parts = ([] if widen_factor is None else [f'{float(widen_factor)}x']) + \
        ([] if groups is None else [f'g={groups}'])
    return ' '.join(parts)


def validate_requested(groups: Optional[int] = None,
                       widen_factor: Optional[float] = None) -> None:
    """Check a requested architecture against the settings ShuffleNetV1 supports.

    ``None`` means "not requested" and always passes.

    Raises:
        ConversionError: listing the allowed values.
    """
    from ..models.backbones.shufflenet_v1 import ShuffleNetV1

    if groups is not None and groups not in ShuffleNetV1.base_channels:
        raise ConversionError(f'requested groups={groups!r} is not supported; groups must be '
                              f'one of {tuple(ShuffleNetV1.base_channels)}')
    if widen_factor is not None and widen_factor not in ShuffleNetV1.widen_factors:
        raise ConversionError(f'requested widen_factor={widen_factor!r} is not supported; '
                              f'widen_factor must be one of {ShuffleNetV1.widen_factors}')


def check_requested_architecture(arch: Mapping, groups: Optional[int] = None,
                                 widen_factor: Optional[float] = None,
                                 source: str = 'checkpoint') -> None:
    """Refuse a file whose detected architecture is not the requested one.

    Args:
        arch (Mapping): ``groups``, ``widen_factor`` and ``channels`` detected in the
            file (:func:`infer_architecture`, :func:`infer_openmmlab_architecture`).
        groups (int, optional): Requested groups; ``None`` accepts any.
        widen_factor (float, optional): Requested width; ``None`` accepts any.
        source (str): The file, for the message.

    Raises:
        ConversionError: a requested value is unsupported, or differs from the
            file's; the message names the detected and the requested architecture.
    """
    validate_requested(groups, widen_factor)
    if (groups is None or groups == arch['groups']) and \
            (widen_factor is None or widen_factor == arch['widen_factor']):
        return
    raise ConversionError(
        f'{source} is ShuffleNetV1 {describe_architecture(arch["groups"], arch["widen_factor"])} '
        f'(channels {tuple(arch["channels"])}), but {describe_architecture(groups, widen_factor)} '
        f'was requested')


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


def _weight_shape(state: Mapping[str, Tensor], key: str) -> tuple[int, ...]:
    """Shape of ``state[key]``, or a ConversionError naming the missing key."""
    if key not in state:
        raise ConversionError(f'missing {key}, which every ShuffleNetV1 classifier has')
    return tuple(state[key].shape)


def _widen_for_channels(groups: int, channels: tuple[int, ...]) -> float:
    """The supported widen factor whose channels at ``groups`` are ``channels``.

    Raises:
        ConversionError: no supported setting has these channels; says so, and
            points out a stem that alone differs.
    """
    from ..models.backbones.shufflenet_v1 import ShuffleNetV1, shufflenet_v1_channels

    if groups not in ShuffleNetV1.base_channels:
        raise ConversionError(f'groups={groups} (channels {channels}) is not supported; groups '
                              f'must be one of {tuple(ShuffleNetV1.base_channels)}')
    settings = {w: shufflenet_v1_channels(groups, w) for w in ShuffleNetV1.widen_factors}
    for widen, expected in settings.items():
        if expected == channels:
            return widen
    near = [w for w, expected in settings.items() if expected[1:] == channels[1:]]
    hint = (f'; its stages are those of {near[0]}x g={groups}, whose stem has '
            f'{settings[near[0]][0]} channels here, not {channels[0]}' if near else '')
    raise ConversionError(f'channels {channels} with groups={groups} match no supported '
                          f'ShuffleNetV1 setting (groups {tuple(ShuffleNetV1.base_channels)}, '
                          f'widen_factor {ShuffleNetV1.widen_factors}){hint}')


def infer_openmmlab_architecture(state: Mapping[str, Tensor]) -> dict:
    """Groups, widen factor and channels of an OpenMMLab classifier, read from its shapes.

    Any setting :func:`~shufflenet_det.models.shufflenet_v1_channels` supports is
    recognised, not only the official releases.

    Args:
        state (Mapping[str, Tensor]): ``backbone.*`` and ``head.fc.*`` tensors.

    Returns:
        dict: ``groups``, ``widen_factor`` and ``channels`` (stem, Stage 2, 3, 4).

    Raises:
        ConversionError: units missing or extra, or channels of no supported setting.
    """
    units = Counter()
    for key in state:
        parts = str(key).split('.')
        if parts[:2] == ['backbone', 'layers'] and len(parts) > 3 and \
                parts[2].isdigit() and parts[3].isdigit():
            units[int(parts[2])] = max(units[int(parts[2])], int(parts[3]) + 1)
    found = tuple(units[s] for s in range(max(units, default=-1) + 1))
    if found != _STAGE_UNITS:
        raise ConversionError(f'expected stages of {_STAGE_UNITS} units under '
                              f'backbone.layers.S.U, found {found}')
    stem = _weight_shape(state, 'backbone.conv1.conv.weight')[0]
    widths = tuple(_weight_shape(state, f'backbone.layers.{s}.1.g_conv_1x1_expand.conv.weight')[0]
                   for s in range(len(_STAGE_UNITS)))
    mid = _weight_shape(state, 'backbone.layers.0.0.g_conv_1x1_compress.conv.weight')[0]
    expand = _weight_shape(state, 'backbone.layers.0.0.g_conv_1x1_expand.conv.weight')
    if len(expand) != 4 or expand[1] == 0 or mid % expand[1]:
        raise ConversionError(f'backbone.layers.0.0.g_conv_1x1_expand.conv.weight has shape '
                              f'{expand}, which fits no grouping of {mid} bottleneck channels')
    groups = mid // expand[1]
    channels = (stem, *widths)
    return dict(groups=groups, widen_factor=_widen_for_channels(groups, channels),
                channels=channels)


def _check_tensors(state: Mapping[str, Tensor], hint: str = '') -> None:
    """Refuse non-tensor entries and NaN or inf values, naming the first offenders.

    Args:
        state (Mapping[str, Tensor]): The state dict.
        hint (str): Appended to the NaN/inf message (what to do about it).
    """
    other = sorted(str(k) for k, v in state.items() if not isinstance(v, Tensor))
    if other:
        raise ConversionError(f'{len(other)} entries of the state dict are not tensors '
                              f'({", ".join(other[:4])})')
    bad = sorted(k for k, v in state.items() if v.is_floating_point() and not v.isfinite().all())
    if bad:
        raise ConversionError(f'{len(bad)} tensors hold NaN or inf values '
                              f'({", ".join(bad[:4])}){hint}')


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
    _check_tensors(state, _MEGVII_NAN_HINT)
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


def _read_checkpoint(src: str, progress: Callable[[str], None]):
    """``torch.load`` ``src`` safely (``weights_only=True``), with errors that name it."""
    if not os.path.isfile(src):
        raise FileNotFoundError(f'no such checkpoint file: {src}')
    progress(f'reading {src}')
    try:
        return load_checkpoint_file(src)
    except CheckpointFileError as exc:
        raise ConversionError(f'{src} could not be read as a PyTorch checkpoint: {exc}') from exc


def _arch_meta(arch: Mapping) -> dict:
    """The ``meta['arch']`` entry: the backbone config that the weights fit."""
    return dict(type='ShuffleNetV1', groups=arch['groups'], widen_factor=arch['widen_factor'])


def _convert_megvii(src: str, dst: str, state: dict[str, Tensor],
                    progress: Callable[[str], None], tolerance: float,
                    groups: Optional[int], widen_factor: Optional[float]) -> dict:
    """Convert, verify against the official network and write a Megvii state dict."""
    from ..models.backbones.shufflenet_v1 import ShuffleNetV1
    from .io import atomic_save
    from .pretrained import load_strict

    _check_tensors(state, _MEGVII_NAN_HINT)
    detected = infer_architecture(state)
    progress(f'official Megvii checkpoint: ShuffleNetV1 '
             f'{describe_architecture(detected["groups"], detected["widen_factor"])} '
             f'(channels {detected["channels"]})')
    check_requested_architecture(detected, groups, widen_factor, src)
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
                arch=_arch_meta(arch), input_convention=dict(MEGVII_INPUT_CONVENTION),
                verified_max_abs_diff=diff)
    atomic_save(dict(state_dict=new_state, meta=meta), dst)
    progress(f'wrote {dst}: {widen}x g={groups}, max feature difference {diff:.2e}; '
             f'input convention {meta["input_convention"]}')
    return meta


def _convert_openmmlab(src: str, dst: str, state: dict[str, Tensor],
                       progress: Callable[[str], None], groups: Optional[int],
                       widen_factor: Optional[float]) -> dict:
    """Check that an OpenMMLab classifier state dict loads strictly, then write it unchanged."""
    from ..models.backbones.shufflenet_v1 import ShuffleNetV1
    from ..models.classifiers import ClsDataPreprocessor, ShuffleNetClassifier
    from .io import atomic_save
    from .pretrained import load_strict

    _check_tensors(state)
    arch = infer_openmmlab_architecture(state)
    name = describe_architecture(arch['groups'], arch['widen_factor'])
    progress(f'OpenMMLab classifier checkpoint: ShuffleNetV1 {name} (channels {arch["channels"]})')
    check_requested_architecture(arch, groups, widen_factor, src)
    fc = _weight_shape(state, 'head.fc.weight')
    if len(fc) != 2 or fc[0] < 1:
        raise ConversionError(f'head.fc.weight has shape {fc}, not (num_classes, channels)')
    progress(f'verifying that it loads strictly into ShuffleNetClassifier {name} '
             f'with {fc[0]} classes')
    # Classes rather than registry names: no default scope is needed.
    classifier = ShuffleNetClassifier(
        backbone=dict(type=ShuffleNetV1, groups=arch['groups'],
                      widen_factor=arch['widen_factor'], out_indices=(3, )),
        num_classes=fc[0], data_preprocessor=dict(type=ClsDataPreprocessor))
    try:
        load_strict(classifier, state, src)
    except RuntimeError as exc:
        # The loader's advice on init_cfg does not apply to a conversion.
        reason = str(exc).split('. Pass strict=False', 1)[0]
        raise ConversionError(f'{reason}; {dst} was not written') from exc
    meta = dict(source='openmmlab', converted_from=str(src), arch=_arch_meta(arch),
                input_convention=dict(OPENMMLAB_INPUT_CONVENTION))
    atomic_save(dict(state_dict=state, meta=meta), dst)
    progress(f'wrote {dst}: {name}, {len(state)} tensors unchanged; '
             f'input convention {meta["input_convention"]}')
    return meta


def convert_file(src: str, dst: str, progress: Callable[[str], None] = print,
                 tolerance: float = 1e-4, groups: Optional[int] = None,
                 widen_factor: Optional[float] = None) -> dict:
    """Convert the checkpoint ``src`` into ``dst``, verified before it is written.

    The format is told from the keys (:func:`detect_format`) and the architecture
    from the shapes. An official Megvii file is converted, and the converted
    backbone and the official network (run from ``src``'s tensors by
    :func:`megvii_forward`) see the same random BGR 0-255 image; every feature map
    must agree to ``tolerance``. An OpenMMLab classifier file must load strictly
    into a :class:`~shufflenet_det.models.ShuffleNetClassifier` of its
    architecture and is written with its state dict unchanged. ``dst`` is written
    atomically, and only once every check has passed.

    Args:
        src (str): The checkpoint to read.
        dst (str): The file to write.
        progress (callable): Called with one message per step. Default: print.
        tolerance (float): Largest allowed feature difference from the official
            network (Megvii files). Default: 1e-4.
        groups (int, optional): The groups the caller expects; ``None`` accepts
            whatever the file holds.
        widen_factor (float, optional): The width the caller expects; ``None``
            accepts whatever the file holds.

    Returns:
        dict: the ``meta`` stored in ``dst``: ``source``, ``converted_from``,
        ``arch``, ``input_convention`` and, for Megvii files, the max difference
        found.

    Raises:
        FileNotFoundError: ``src`` does not exist.
        ConversionError: an unsupported requested architecture, an unreadable
            file or one of neither format, an architecture other than the
            requested one, or a failed check.
    """
    validate_requested(groups, widen_factor)
    ckpt = _read_checkpoint(src, progress)
    state = unwrap_state(ckpt, src)
    if detect_format(state, src) == MEGVII_FORMAT:
        return _convert_megvii(src, dst, strip_megvii_state(state, src), progress, tolerance,
                               groups, widen_factor)
    return _convert_openmmlab(src, dst, state, progress, groups, widen_factor)
