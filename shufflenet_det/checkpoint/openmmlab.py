"""OpenMMLab ShuffleNetV1 classifier files: recognised from their shapes, checked, kept as they are.

They already have this project's layout (``backbone.conv1.*``, ``backbone.layers.S.U.*``,
``head.fc.*``) and the paper's shuffle. The converter checks that such a file loads
strictly into a :class:`~shufflenet_det.models.ShuffleNetClassifier` of its
architecture and writes it with its input convention recorded.
"""
from collections import Counter
from collections.abc import Mapping

from torch import Tensor

from ..errors import CheckpointMismatchError
from ..models.backbones import (GROUPS, STAGE_UNITS, WIDEN_FACTORS, ShuffleNetV1,
                                shufflenet_v1_channels)
from ..models.classifiers import ClsDataPreprocessor, ShuffleNetClassifier
from .formats import ConversionError, arch_meta, check_tensors, weight_shape
from .pretrained import load_strict

# OpenMMLab's ImageNet weights: RGB, normalised with ImageNet statistics (0-255 scale).
OPENMMLAB_INPUT_CONVENTION = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                                  bgr_to_rgb=True)


def _widen_for_channels(groups: int, channels: tuple[int, ...]) -> float:
    """The supported widen factor whose channels at ``groups`` are ``channels``.

    Raises:
        ConversionError: no supported setting has these channels; says so, and
            points out a stem that alone differs.
    """
    if groups not in GROUPS:
        raise ConversionError(f'groups={groups} (channels {channels}) is not supported; groups '
                              f'must be one of {GROUPS}')
    settings = {w: shufflenet_v1_channels(groups, w) for w in WIDEN_FACTORS}
    for widen, expected in settings.items():
        if expected == channels:
            return widen
    near = [w for w, expected in settings.items() if expected[1:] == channels[1:]]
    hint = (f'; its stages are those of {near[0]}x g={groups}, whose stem has '
            f'{settings[near[0]][0]} channels here, not {channels[0]}' if near else '')
    raise ConversionError(f'channels {channels} with groups={groups} match no supported '
                          f'ShuffleNetV1 setting (groups {GROUPS}, widen_factor '
                          f'{WIDEN_FACTORS}){hint}')


def infer_openmmlab_architecture(state: Mapping[str, Tensor]) -> dict:
    """Groups, widen factor and channels of an OpenMMLab classifier, read from its shapes.

    Any setting :func:`~shufflenet_det.models.shufflenet_v1_channels` supports is
    recognised, not only the official releases.

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
    if found != STAGE_UNITS:
        raise ConversionError(f'expected stages of {STAGE_UNITS} units under '
                              f'backbone.layers.S.U, found {found}')
    stem = weight_shape(state, 'backbone.conv1.conv.weight')[0]
    widths = tuple(weight_shape(state, f'backbone.layers.{s}.1.g_conv_1x1_expand.conv.weight')[0]
                   for s in range(len(STAGE_UNITS)))
    mid = weight_shape(state, 'backbone.layers.0.0.g_conv_1x1_compress.conv.weight')[0]
    expand = weight_shape(state, 'backbone.layers.0.0.g_conv_1x1_expand.conv.weight')
    if len(expand) != 4 or expand[1] == 0 or mid % expand[1]:
        raise ConversionError(f'backbone.layers.0.0.g_conv_1x1_expand.conv.weight has shape '
                              f'{expand}, which fits no grouping of {mid} bottleneck channels')
    groups = mid // expand[1]
    channels = (stem, *widths)
    return dict(groups=groups, widen_factor=_widen_for_channels(groups, channels),
                channels=channels)


def check_openmmlab(src: str, dst: str, state: Mapping[str, Tensor], arch: Mapping,
                    progress) -> dict:
    """Check that the classifier loads strictly; returns the ``meta`` to write with it."""
    fc = weight_shape(state, 'head.fc.weight')
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
    return dict(source='openmmlab', converted_from=str(src), arch=arch_meta(arch),
                input_convention=dict(OPENMMLAB_INPUT_CONVENTION))


def prepare_openmmlab(state: Mapping[str, Tensor]) -> tuple[dict, dict]:
    """The checked state dict of an OpenMMLab file, and its architecture."""
    check_tensors(state)
    return dict(state), infer_openmmlab_architecture(state)
