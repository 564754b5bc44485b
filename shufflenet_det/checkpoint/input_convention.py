"""How a checkpoint's weights expect images: known, and equal to the detector's data preprocessor.

ImageNet weights work only on images normalised as in their training: Megvii's take
BGR in 0-255, OpenMMLab's RGB normalised with ImageNet statistics. The state dict
does not say which, and a detector fed the other convention trains on without an
error, just worse. So before a detector is initialised from a checkpoint, the
convention must be known, from (in this order):

1. ``meta['input_convention']`` of the file (``tools/convert_checkpoint.py`` and this
   project's pretraining write it);
2. ``input_convention`` stated in the initialiser's ``init_cfg``: ``'megvii'``,
   ``'openmmlab'`` or ``dict(mean=..., std=..., bgr_to_rgb=...)``;
3. the file's layout: OpenMMLab's ShuffleNetV1 classifier files (``backbone.conv1.*``,
   ``backbone.layers.S.U.*``, ``head.fc.*``) record none and take OpenMMLab's RGB
   normalisation.

A file that gives none of these is refused, and so is a stated convention that
contradicts the recorded one. The known convention must then equal the data
preprocessor's mean, std and channel order.
"""
from collections.abc import Mapping
from typing import Optional, Union

from mmengine.logging import print_log
from torch import nn

from ..errors import ConfigError
from .formats import OPENMMLAB_FORMAT, missing_required
from .megvii import MEGVII_INPUT_CONVENTION
from .openmmlab import OPENMMLAB_INPUT_CONVENTION

NAMED_CONVENTIONS = {'megvii': MEGVII_INPUT_CONVENTION, 'openmmlab': OPENMMLAB_INPUT_CONVENTION}
_STATE_IT = ("state it in the initialiser's init_cfg: input_convention='megvii' (BGR 0-255, "
             "not normalised), 'openmmlab' (RGB, mean=[123.675, 116.28, 103.53], std=[58.395, "
             "57.12, 57.375]) or dict(mean=[...], std=[...], bgr_to_rgb=...)")


def _rounded(convention: Mapping) -> dict:
    return dict(mean=[round(float(v), 4) for v in convention['mean']],
                std=[round(float(v), 4) for v in convention['std']],
                bgr_to_rgb=bool(convention['bgr_to_rgb']))


def parse_input_convention(value: Union[None, str, Mapping]) -> Optional[dict]:
    """A stated ``input_convention`` as ``dict(mean, std, bgr_to_rgb)``; ``None`` stays None.

    Raises:
        ConfigError: neither a known name nor a mapping with mean, std (3 values each)
            and bgr_to_rgb.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if value not in NAMED_CONVENTIONS:
            raise ConfigError(f'input_convention={value!r} is not known; {_STATE_IT}')
        return _rounded(NAMED_CONVENTIONS[value])
    if isinstance(value, Mapping) and set(value) == {'mean', 'std', 'bgr_to_rgb'} and \
            len(value['mean']) == 3 and len(value['std']) == 3:
        return _rounded(value)
    raise ConfigError(f'input_convention={value!r} cannot be used; {_STATE_IT}')


def is_openmmlab_classifier(state: Mapping) -> bool:
    """Whether ``state`` (with its ``backbone.`` prefix) has OpenMMLab's classifier layout."""
    return not missing_required(state, OPENMMLAB_FORMAT)


def resolve_input_convention(meta: Mapping, state: Mapping, stated: Optional[dict],
                             source: str) -> tuple[dict, str]:
    """The convention the weights of ``source`` expect, and where that is known from.

    Args:
        meta (Mapping): The checkpoint's ``meta``.
        state (Mapping): Its whole state dict (keys with their prefix).
        stated (dict, optional): The ``input_convention`` of the init_cfg, parsed.
        source (str): The file, for the messages.

    Returns:
        tuple[dict, str]: ``dict(mean, std, bgr_to_rgb)`` and its origin in words.

    Raises:
        ConfigError: ``stated`` contradicts the recorded convention, or nothing
            tells the convention.
    """
    recorded = meta.get('input_convention')
    if recorded is not None:
        recorded = _rounded(recorded)
        if stated is not None and stated != recorded:
            raise ConfigError(
                f"{source} records input_convention={recorded} in its meta, but the init_cfg "
                f'states input_convention={stated}. The file\'s record says how its weights '
                'were trained: remove input_convention from the init_cfg')
        return recorded, "recorded in the file's meta"
    if stated is not None:
        return stated, 'stated in the init_cfg'
    if is_openmmlab_classifier(state):
        print_log(f'{source} records no input convention; its layout is that of OpenMMLab\'s '
                  'ShuffleNetV1 classifiers, which take RGB images normalised with ImageNet '
                  'statistics, so that convention is checked (if this file was trained '
                  f'otherwise, {_STATE_IT})', logger='current')
        return _rounded(OPENMMLAB_INPUT_CONVENTION), "OpenMMLab's, told from the file's layout"
    raise ConfigError(
        f"{source} records no input convention (meta['input_convention']) and is not an "
        "OpenMMLab ShuffleNetV1 classifier file, so nothing says how its weights expect "
        'images to be normalised, and a detector with another normalisation would train '
        'on silently. Convert the file with tools/convert_checkpoint.py, which records it, '
        f'or {_STATE_IT}')


def preprocessor_convention(preprocessor: nn.Module) -> dict:
    """The mean, std and channel order of a ``DetDataPreprocessor`` (0 and 1 if it does not
    normalise)."""
    bgr_to_rgb = bool(getattr(preprocessor, '_channel_conversion', False))
    if not getattr(preprocessor, '_enable_normalize', False):
        return dict(mean=[0.0] * 3, std=[1.0] * 3, bgr_to_rgb=bgr_to_rgb)
    return dict(mean=[round(v, 4) for v in preprocessor.mean.flatten().tolist()],
                std=[round(v, 4) for v in preprocessor.std.flatten().tolist()],
                bgr_to_rgb=bgr_to_rgb)


def check_input_convention(expected: Mapping, preprocessor: nn.Module, source: str,
                           origin: str = "recorded in the file's meta") -> None:
    """Raise if ``preprocessor`` does not normalise images as ``expected`` says.

    Args:
        expected (Mapping): ``mean``, ``std`` and ``bgr_to_rgb`` the weights expect.
        preprocessor (nn.Module): The detector's ``DetDataPreprocessor``.
        source (str): The checkpoint, for the message.
        origin (str): Where ``expected`` comes from, for the message.

    Raises:
        ConfigError: naming both conventions.
    """
    want, have = _rounded(expected), preprocessor_convention(preprocessor)
    if have != want:
        raise ConfigError(
            f'{source} was trained on images normalised with mean={want["mean"]}, '
            f'std={want["std"]}, bgr_to_rgb={want["bgr_to_rgb"]} ({origin}), but the '
            f'detector\'s data_preprocessor uses mean={have["mean"]}, std={have["std"]}, '
            f'bgr_to_rgb={have["bgr_to_rgb"]}. Set model.data_preprocessor to the '
            "checkpoint's values")
