"""Converting the public ShuffleNetV1 ImageNet files (``tools/convert_checkpoint.py``) and
exporting a backbone (``tools/export_backbone.py``).

Official Megvii files are converted and checked against the official network (:mod:`.megvii`);
OpenMMLab classifiers already have this project's layout and must load strictly. The format
is told from the keys, the architecture from the shapes; the output is written only once
every check has passed.
"""
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Optional

import torch
from torch import Tensor

from ..errors import CheckpointMismatchError, InputError
from ..fileio import check_writable
from ..models.backbones import (GROUPS, OFFICIAL_CHANNELS, STAGE_UNITS, WIDEN_FACTORS,
                                ShuffleNetV1, shufflenet_v1_channels)
from ..models.classifiers import ClsDataPreprocessor, ShuffleNetClassifier
from .files import atomic_save, read_checkpoint
from .loading import load_strict, select_prefix, strip_module
from .megvii import (MEGVII_INPUT_CONVENTION, STAGE_STARTS, choose_shuffle_order,
                     convert_megvii_state, megvii_forward)

MEGVII_FORMAT = 'megvii'
OPENMMLAB_FORMAT = 'openmmlab'
# OpenMMLab's ImageNet weights: RGB, normalised with ImageNet statistics (0-255 scale).
OPENMMLAB_INPUT_CONVENTION = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                                  bgr_to_rgb=True)
BACKBONE_PREFIX = 'backbone.'
# Key prefixes that make a state dict look like each format (Megvii's without ``module.``).
_FORMAT_PREFIXES = {MEGVII_FORMAT: ('first_conv.', 'features.', 'classifier.'),
                    OPENMMLAB_FORMAT: ('backbone.', 'head.')}
# Keys each format must hold, spelled as they appear in the file.
_REQUIRED_KEYS = {
    MEGVII_FORMAT: ('module.first_conv.0.weight', 'module.features.0.branch_main_1.0.weight',
                    'module.classifier.0.weight'),
    OPENMMLAB_FORMAT: ('backbone.conv1.conv.weight',
                       'backbone.layers.0.0.g_conv_1x1_compress.conv.weight', 'head.fc.weight'),
}
# Each format as messages name it, and as the converter's progress titles it.
_FORMAT_NAMES = {
    MEGVII_FORMAT: ('an official Megvii ShuffleNetV1 checkpoint', 'official Megvii checkpoint'),
    OPENMMLAB_FORMAT: ('an OpenMMLab ShuffleNetV1 classifier checkpoint',
                       'OpenMMLab classifier checkpoint'),
}
_ACCEPTED_FORMATS = ('official Megvii ShuffleNetV1 checkpoints (keys module.first_conv.*, '
                     'module.features.N.branch_main_*, module.classifier.0.*) and OpenMMLab '
                     'ShuffleNetV1 classifier checkpoints (keys backbone.conv1.*, '
                     'backbone.layers.S.U.*, head.fc.*)')


class ConversionError(InputError, ValueError):
    """The file is in neither accepted format, is not the requested architecture, or
    fails a check."""


def missing_required(state: Mapping, fmt: str) -> list[str]:
    """The required keys of ``fmt`` that ``state`` lacks (Megvii's ``module.`` optional)."""
    keys = {strip_module(str(k)) if fmt == MEGVII_FORMAT else str(k) for k in state}
    return [k for k in _REQUIRED_KEYS[fmt] if strip_module(k) not in keys]


def detect_format(state: Mapping[str, Tensor], source: str = 'checkpoint') -> str:
    """:data:`MEGVII_FORMAT` or :data:`OPENMMLAB_FORMAT`, told from the keys.

    Raises:
        ConversionError: keys of neither format, of both, or of one without all its
            required keys; the message names both accepted formats.
    """
    keys = {MEGVII_FORMAT: {strip_module(str(k)) for k in state},
            OPENMMLAB_FORMAT: {str(k) for k in state}}
    looks_like = [fmt for fmt, prefixes in _FORMAT_PREFIXES.items()
                  if any(k.startswith(prefixes) for k in keys[fmt])]
    if len(looks_like) == 1:
        absent = missing_required(state, looks_like[0])
        if not absent:
            return looks_like[0]
        problem = f'is not {_FORMAT_NAMES[looks_like[0]][0]}: it lacks {", ".join(absent)}'
    elif looks_like:
        problem = 'mixes keys of both accepted formats'
    else:
        problem = (f'is neither {_FORMAT_NAMES[MEGVII_FORMAT][0]} nor '
                   f'{_FORMAT_NAMES[OPENMMLAB_FORMAT][0]}')
    shown = ', '.join(sorted(str(k) for k in state)[:5]) or 'none'
    raise ConversionError(f'{source} {problem} (its first keys are: {shown}); the converter '
                          f'accepts {_ACCEPTED_FORMATS}')


def describe_architecture(groups: Optional[int] = None,
                          widen_factor: Optional[float] = None) -> str:
    """``'1.0x g=3'``, or just the part that is given (``'g=8'``, ``'2.0x'``)."""
    return ' '.join(([] if widen_factor is None else [f'{float(widen_factor)}x'])
                    + ([] if groups is None else [f'g={groups}']))


def _weight_shape(state: Mapping[str, Tensor], key: str) -> tuple[int, ...]:
    if key not in state:
        raise ConversionError(f'missing {key}, which every ShuffleNetV1 classifier has')
    return tuple(state[key].shape)


def strip_megvii_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """An official state dict without its ``module.`` prefix."""
    return {strip_module(k): v for k, v in state.items()}


def infer_megvii_architecture(state: Mapping[str, Tensor]) -> dict:
    """Groups, widen factor and channels of an official release, read from its shapes."""
    units = sorted({int(k.split('.')[1]) for k in state if k.startswith('features.')})
    if units != list(range(sum(STAGE_UNITS))):
        raise ConversionError(f'expected units features.0 to features.{sum(STAGE_UNITS) - 1} '
                              f'(stages of {STAGE_UNITS} units), found {units}')
    widths = [4 * state[f'features.{i}.branch_main_1.0.weight'].shape[0] for i in STAGE_STARTS]
    groups = widths[0] // 4 // state['features.0.branch_main_2.0.weight'].shape[1]
    channels = (state['first_conv.0.weight'].shape[0], *widths)
    for (g, widen), official in OFFICIAL_CHANNELS.items():
        if g == groups and official == channels:
            return dict(groups=groups, widen_factor=widen, channels=channels)
    raise ConversionError(f'channels {channels} with groups={groups} match no official '
                          f'release; known: {sorted(OFFICIAL_CHANNELS.items())}')


def infer_openmmlab_architecture(state: Mapping[str, Tensor]) -> dict:
    """Groups, widen factor and channels (stem, Stage 2, 3, 4) of an OpenMMLab classifier,
    read from its shapes; any setting ShuffleNetV1 supports is recognised."""
    units = Counter()
    for key in state:
        parts = str(key).split('.')
        if parts[:2] == ['backbone', 'layers'] and len(parts) > 3 and \
                parts[2].isdigit() and parts[3].isdigit():
            units[int(parts[2])] = max(units[int(parts[2])], int(parts[3]) + 1)
    found = tuple(units[s] for s in range(max(units, default=-1) + 1))
    if found != STAGE_UNITS:
        raise ConversionError(f'expected stages of {STAGE_UNITS} units under '
                              f'backbone.layers.S.U, found {found}')
    stem = _weight_shape(state, 'backbone.conv1.conv.weight')[0]
    widths = tuple(_weight_shape(state, f'backbone.layers.{s}.1.g_conv_1x1_expand.conv.weight')[0]
                   for s in range(len(STAGE_UNITS)))
    mid = _weight_shape(state, 'backbone.layers.0.0.g_conv_1x1_compress.conv.weight')[0]
    expand = _weight_shape(state, 'backbone.layers.0.0.g_conv_1x1_expand.conv.weight')
    if len(expand) != 4 or expand[1] == 0 or mid % expand[1]:
        raise ConversionError(f'backbone.layers.0.0.g_conv_1x1_expand.conv.weight has shape '
                              f'{expand}, which fits no grouping of {mid} bottleneck channels')
    groups, channels = mid // expand[1], (stem, *widths)
    if groups not in GROUPS:
        raise ConversionError(f'groups={groups} (channels {channels}) is not supported; groups '
                              f'must be one of {GROUPS}')
    settings = {w: shufflenet_v1_channels(groups, w) for w in WIDEN_FACTORS}
    for widen, expected in settings.items():
        if expected == channels:
            return dict(groups=groups, widen_factor=widen, channels=channels)
    near = [w for w, expected in settings.items() if expected[1:] == channels[1:]]
    hint = (f'; its stages are those of {near[0]}x g={groups}, whose stem has '
            f'{settings[near[0]][0]} channels here, not {channels[0]}' if near else '')
    raise ConversionError(f'channels {channels} with groups={groups} match no supported '
                          f'ShuffleNetV1 setting (groups {GROUPS}, widen_factor '
                          f'{WIDEN_FACTORS}){hint}')


def _convert_megvii(src: str, dst: str, state: dict, arch: dict,
                    progress: Callable[[str], None], tolerance: float) -> tuple[dict, float]:
    """Convert an official state dict and compare its Stage 2-4 features with the official
    network's; returns the converted state dict and the largest difference."""
    order, reason = choose_shuffle_order(state, arch['groups'])
    arch['shuffle_order'] = order
    if reason:
        progress(f'{reason}. The weights are kept in the official order, for a backbone '
                 "built with shuffle_order='megvii' (recorded in the file's meta['arch'])")
    converted = convert_megvii_state(state, arch, progress)
    progress(f"verifying {describe_architecture(arch['groups'], arch['widen_factor'])}, "
             f"shuffle_order='{order}', against the official network")
    backbone = ShuffleNetV1(groups=arch['groups'], widen_factor=arch['widen_factor'],
                            out_indices=(0, 1, 2), shuffle_order=order)
    load_strict(backbone, select_prefix(converted, BACKBONE_PREFIX, src), f'converted {src}')
    image = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        ours, theirs = backbone.eval()(image), megvii_forward(state, image, arch['groups'])
    diff = max((a - b).abs().max().item() for a, b in zip(ours, theirs))
    if not diff <= tolerance:
        raise ConversionError(f'converted features differ from the official network by '
                              f'{diff:.3g} (tolerance {tolerance}); {dst} was not written')
    progress(f'max feature difference {diff:.2e}')
    return converted, diff


def _check_openmmlab(src: str, dst: str, state: dict, arch: Mapping,
                     progress: Callable[[str], None]) -> None:
    """Check that the classifier loads strictly into a ShuffleNetClassifier of ``arch``."""
    fc = _weight_shape(state, 'head.fc.weight')
    if len(fc) != 2 or fc[0] < 1:
        raise ConversionError(f'head.fc.weight has shape {fc}, not (num_classes, channels)')
    progress(f'verifying that it loads strictly into ShuffleNetClassifier '
             f'{float(arch["widen_factor"])}x g={arch["groups"]} with {fc[0]} classes')
    # Classes rather than registry names: no default scope is needed.
    classifier = ShuffleNetClassifier(
        backbone=dict(type=ShuffleNetV1, groups=arch['groups'],
                      widen_factor=arch['widen_factor'], out_indices=(2, )),
        num_classes=fc[0], data_preprocessor=dict(type=ClsDataPreprocessor))
    try:
        load_strict(classifier, state, src)
    except CheckpointMismatchError as exc:
        # The loader's advice on init_cfg does not apply to a conversion.
        reason = str(exc).split('. Pass strict=False', 1)[0]
        raise ConversionError(f'{reason}; {dst} was not written') from exc


def convert_file(src: str, dst: str, progress: Callable[[str], None] = print,
                 tolerance: float = 1e-4, groups: Optional[int] = None,
                 widen_factor: Optional[float] = None) -> dict:
    """Convert the checkpoint ``src`` into ``dst``, verified before it is written.

    Args:
        src (str): The checkpoint to read.
        dst (str): The file to write.
        progress (callable): Called with one message per step. Default: print.
        tolerance (float): Largest allowed feature difference from the official
            network (Megvii files). Default: 1e-4.
        groups (int, optional): The groups expected; ``None`` accepts the file's.
        widen_factor (float, optional): The width expected; ``None`` accepts the file's.

    Returns:
        dict: the ``meta`` stored in ``dst``: ``source``, ``converted_from``, ``arch``,
        ``input_convention`` and, for Megvii files, ``verified_max_abs_diff``.

    Raises:
        InputError: ``src`` is missing or unreadable (CheckpointFileError), or is of neither
            format, another architecture, or fails a check (ConversionError).
    """
    if groups is not None and groups not in GROUPS:
        raise ConversionError(f'requested groups={groups!r} is not supported; groups must be '
                              f'one of {GROUPS}')
    if widen_factor is not None and widen_factor not in WIDEN_FACTORS:
        raise ConversionError(f'requested widen_factor={widen_factor!r} is not supported; '
                              f'widen_factor must be one of {WIDEN_FACTORS}')
    progress(f'reading {src}')
    state, _ = read_checkpoint(src)
    fmt = detect_format(state, src)
    other = sorted({str(v.dtype).replace('torch.', '') for v in state.values()
                    if v.is_floating_point() and v.dtype != torch.float32})
    if other:  # the official float32 network checks them, float32 models load them
        count = sum(v.is_floating_point() and v.dtype != torch.float32 for v in state.values())
        progress(f'{src}: {count} tensors are {" or ".join(other)}; converted to float32, the '
                 'precision of the official weights and of the models they load into')
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    megvii = fmt == MEGVII_FORMAT
    state = strip_megvii_state(state) if megvii else state
    bad = sorted(k for k, v in state.items() if v.is_floating_point() and not v.isfinite().all())
    if bad:
        raise ConversionError(
            f'{len(bad)} tensors hold NaN or inf values ({", ".join(bad[:4])})' + (
                '; some early official files were published broken and replaced later, so '
                'download the file again' if megvii else ''))
    arch = infer_megvii_architecture(state) if megvii else infer_openmmlab_architecture(state)
    found = describe_architecture(arch['groups'], arch['widen_factor'])
    progress(f'{_FORMAT_NAMES[fmt][1]}: ShuffleNetV1 {found} (channels {arch["channels"]})')
    if groups not in (None, arch['groups']) or widen_factor not in (None, arch['widen_factor']):
        raise ConversionError(
            f'{src} is ShuffleNetV1 {found} (channels {tuple(arch["channels"])}), but '
            f'{describe_architecture(groups, widen_factor)} was requested')
    if megvii:
        state, diff = _convert_megvii(src, dst, state, arch, progress, tolerance)
        source, convention, checked = ('megvii-model/ShuffleNet-Series', MEGVII_INPUT_CONVENTION,
                                       dict(verified_max_abs_diff=diff))
    else:
        _check_openmmlab(src, dst, state, arch, progress)
        source, convention, checked = 'openmmlab', OPENMMLAB_INPUT_CONVENTION, {}
    order = arch.get('shuffle_order', 'paper')
    meta = dict(source=source, converted_from=str(src),
                arch=dict(type='ShuffleNetV1', groups=arch['groups'],
                          widen_factor=arch['widen_factor'], shuffle_order=order),
                input_convention=dict(convention), **checked)
    atomic_save(dict(state_dict=state, meta=meta), dst)
    progress(f"wrote {dst}: {found}, shuffle_order='{order}'; input convention {convention}")
    return meta


def export_backbone(src: str, dst: str, progress: Callable[[str], None] = print) -> dict:
    """Write ``src``'s ``backbone.*`` tensors, its architecture and input convention, to ``dst``.

    Optimizer state, message hub and the classifier head are left out; keys keep their
    ``backbone.`` prefix, so detectors load either file the same way.

    Returns:
        dict: ``tensors`` (how many were written) and the ``meta`` stored.

    Raises:
        OutputPathError: ``dst`` cannot be written (checked before ``src`` is read).
        CheckpointMismatchError: ``src`` holds no ``backbone.*`` tensors.
    """
    check_writable(dst, 'DST')
    state, meta = read_checkpoint(src)
    backbone = select_prefix(state, BACKBONE_PREFIX, src)
    out_meta = dict(exported_from=str(src))
    out_meta.update({k: meta[k] for k in ('arch', 'input_convention', 'epoch', 'iter')
                     if k in meta})
    atomic_save(dict(state_dict={BACKBONE_PREFIX + k: v for k, v in backbone.items()},
                     meta=out_meta), dst)
    progress(f'wrote {len(backbone)} backbone tensors to {dst}; input convention: '
             f'{out_meta.get("input_convention", "not recorded")}')
    return dict(tensors=len(backbone), meta=out_meta)
