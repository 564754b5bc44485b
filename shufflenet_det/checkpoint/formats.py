"""What a checkpoint file to convert is: its format, its architecture, and reading and writing it.

Two formats are accepted, told apart by their keys (:func:`detect_format`):
official Megvii files (``module.first_conv.*``, ``module.features.N.branch_main_*``,
``module.classifier.0.*``; ``shufflenet_det.checkpoint.megvii``) and OpenMMLab
ShuffleNetV1 classifiers (``backbone.conv1.*``, ``backbone.layers.S.U.*``,
``head.fc.*``; ``shufflenet_det.checkpoint.openmmlab``). Either way the
architecture is read from the tensor shapes and checked against the one the
caller requested (:func:`check_requested_architecture`).
"""
from collections.abc import Callable, Mapping
from typing import Optional

import torch
from torch import Tensor

from ..errors import InputError
from ..models.backbones import GROUPS, WIDEN_FACTORS
from .files import atomic_save, load_checkpoint_file

MEGVII_FORMAT = 'megvii'
OPENMMLAB_FORMAT = 'openmmlab'
# Key prefixes that make a state dict look like each format (Megvii's without ``module.``).
_FORMAT_PREFIXES = {
    MEGVII_FORMAT: ('first_conv.', 'features.', 'classifier.'),
    OPENMMLAB_FORMAT: ('backbone.', 'head.'),
}
# Keys each format must hold, spelled as they appear in the file.
REQUIRED_KEYS = {
    MEGVII_FORMAT: ('module.first_conv.0.weight', 'module.features.0.branch_main_1.0.weight',
                    'module.classifier.0.weight'),
    OPENMMLAB_FORMAT: ('backbone.conv1.conv.weight',
                       'backbone.layers.0.0.g_conv_1x1_compress.conv.weight', 'head.fc.weight'),
}
# Each format as messages name it, and as the converter's progress titles it.
FORMAT_NAMES = {
    MEGVII_FORMAT: ('an official Megvii ShuffleNetV1 checkpoint', 'official Megvii checkpoint'),
    OPENMMLAB_FORMAT: ('an OpenMMLab ShuffleNetV1 classifier checkpoint',
                       'OpenMMLab classifier checkpoint'),
}
ACCEPTED_FORMATS = ('official Megvii ShuffleNetV1 checkpoints (keys module.first_conv.*, '
                    'module.features.N.branch_main_*, module.classifier.0.*) and OpenMMLab '
                    'ShuffleNetV1 classifier checkpoints (keys backbone.conv1.*, '
                    'backbone.layers.S.U.*, head.fc.*)')


class ConversionError(InputError, ValueError):
    """The file is in neither accepted format, is not the requested architecture, or
    fails a check."""


def strip_module(key: str) -> str:
    """``key`` without a leading ``module.`` (the prefix DataParallel adds)."""
    return key[len('module.'):] if key.startswith('module.') else key


def missing_required(state: Mapping, fmt: str) -> list[str]:
    """The :data:`REQUIRED_KEYS` of ``fmt`` that ``state`` lacks (Megvii's ``module.`` optional)."""
    keys = {strip_module(str(k)) if fmt == MEGVII_FORMAT else str(k) for k in state}
    return [k for k in REQUIRED_KEYS[fmt] if strip_module(k) not in keys]


def unwrap_state(ckpt, source: str = 'checkpoint') -> dict[str, Tensor]:
    """The state dict of a loaded checkpoint: ``ckpt['state_dict']``, or ``ckpt`` itself.

    Raises:
        ConversionError: ``ckpt`` holds no mapping there.
    """
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, Mapping) else None
    if not isinstance(state, Mapping):
        raise ConversionError(f'{source} holds {type(ckpt).__name__}, not a state dict')
    return dict(state)


def detect_format(state: Mapping[str, Tensor], source: str = 'checkpoint') -> str:
    """Which accepted format a state dict is in, told from its keys.

    Returns:
        str: :data:`MEGVII_FORMAT` or :data:`OPENMMLAB_FORMAT`.

    Raises:
        ConversionError: the keys are of neither format, of both, or of one but
            without all its required keys; the message names both accepted formats.
    """
    keys = {MEGVII_FORMAT: {strip_module(str(k)) for k in state},
            OPENMMLAB_FORMAT: {str(k) for k in state}}
    looks_like = [fmt for fmt, prefixes in _FORMAT_PREFIXES.items()
                  if any(k.startswith(prefixes) for k in keys[fmt])]
    if len(looks_like) == 1:
        fmt = looks_like[0]
        absent = missing_required(state, fmt)
        if not absent:
            return fmt
        problem = f'is not {FORMAT_NAMES[fmt][0]}: it lacks {", ".join(absent)}'
    elif looks_like:
        problem = 'mixes keys of both accepted formats'
    else:
        problem = (f'is neither {FORMAT_NAMES[MEGVII_FORMAT][0]} nor '
                   f'{FORMAT_NAMES[OPENMMLAB_FORMAT][0]}')
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
    if groups is not None and groups not in GROUPS:
        raise ConversionError(f'requested groups={groups!r} is not supported; groups must be '
                              f'one of {GROUPS}')
    if widen_factor is not None and widen_factor not in WIDEN_FACTORS:
        raise ConversionError(f'requested widen_factor={widen_factor!r} is not supported; '
                              f'widen_factor must be one of {WIDEN_FACTORS}')


def check_requested_architecture(arch: Mapping, groups: Optional[int] = None,
                                 widen_factor: Optional[float] = None,
                                 source: str = 'checkpoint') -> None:
    """Refuse a file whose detected architecture is not the requested one.

    Args:
        arch (Mapping): ``groups``, ``widen_factor`` and ``channels`` detected in the file.
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


def weight_shape(state: Mapping[str, Tensor], key: str) -> tuple[int, ...]:
    """Shape of ``state[key]``, or a ConversionError naming the missing key."""
    if key not in state:
        raise ConversionError(f'missing {key}, which every ShuffleNetV1 classifier has')
    return tuple(state[key].shape)


def check_tensors(state: Mapping[str, Tensor], hint: str = '') -> None:
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


def cast_to_float32(state: Mapping[str, Tensor], source: str,
                    progress: Callable[[str], None]) -> dict[str, Tensor]:
    """``state`` with every floating-point tensor in float32, saying so if any was not.

    The converted weights are checked against the official float32 network and
    loaded into float32 models; a file saved in half precision (or bfloat16, or
    float64) is widened or rounded to float32 here, once, with one message.
    """
    other = sorted({str(v.dtype).replace('torch.', '') for v in state.values()
                    if v.is_floating_point() and v.dtype != torch.float32})
    if not other:
        return dict(state)
    count = sum(v.is_floating_point() and v.dtype != torch.float32 for v in state.values())
    progress(f'{source}: {count} tensors are {" or ".join(other)}; converted to float32, the '
             'precision of the official weights and of the models they load into')
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def read_source(src: str, progress: Callable[[str], None]) -> dict[str, Tensor]:
    """The state dict of the file to convert, read safely (``weights_only=True``).

    Raises:
        InputFileNotFoundError: ``src`` does not exist.
        CheckpointFileError: ``src`` is not a readable PyTorch checkpoint.
        ConversionError: it holds no state dict.
    """
    progress(f'reading {src}')
    return unwrap_state(load_checkpoint_file(src), src)


def arch_meta(arch: Mapping) -> dict:
    """The ``meta['arch']`` entry: the backbone config that the weights fit."""
    return dict(type='ShuffleNetV1', groups=arch['groups'], widen_factor=arch['widen_factor'],
                shuffle_order=arch.get('shuffle_order', 'paper'))


def write_converted(dst: str, state: Mapping[str, Tensor], meta: dict,
                    progress: Callable[[str], None]) -> dict:
    """Write ``state`` and ``meta`` to ``dst`` atomically; returns ``meta``."""
    atomic_save(dict(state_dict=dict(state), meta=meta), dst)
    arch = meta['arch']
    progress(f'wrote {dst}: {describe_architecture(arch["groups"], arch["widen_factor"])}, '
             f"shuffle_order='{arch['shuffle_order']}'; input convention "
             f'{meta["input_convention"]}')
    return meta
