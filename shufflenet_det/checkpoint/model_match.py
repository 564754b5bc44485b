"""Whether a checkpoint's tensors fit a model exactly, checked before anything is loaded.

MMEngine's ``Runner.resume`` loads non-strictly: a checkpoint of another config
copies whatever happens to fit, warns once per tensor that does not, and the run
then fails later (e.g. inside the optimizer, whose state no longer fits the
parameters) or, worse, trains on from a half-loaded model.
:func:`check_checkpoint_fits_model` makes the same comparison as strict loading,
on names and shapes only, so that it can run before the Runner loads anything.
"""
from collections.abc import Mapping, Sequence
from typing import Optional

from torch import nn

from ..errors import CheckpointMismatchError
from .formats import strip_module


def listing(problems: Sequence[tuple[str, list[str]]], shown: int = 4) -> list[str]:
    """``'N missing keys: a, b ... (+M more)'`` per non-empty ``(kind, items)``."""
    return [f'{len(items)} {what}: ' + ', '.join(items[:shown])
            + (f' ... (+{len(items) - shown} more)' if len(items) > shown else '')
            for what, items in problems if items]


def state_shapes(state: Mapping, strip: bool = True) -> dict[str, tuple[int, ...]]:
    """``{name: shape}`` of a state dict, without DataParallel's ``module.`` prefix
    (MMEngine's loader drops it too) unless ``strip`` is False."""
    return {strip_module(k) if strip else k: tuple(v.shape) for k, v in state.items()}


def key_mismatches(own: Mapping[str, tuple], given: Mapping[str, tuple], prefix: str = ''):
    """``(shape mismatches, missing keys, unexpected keys)`` of ``given`` against ``own``."""
    mismatched = [f'{prefix}{k}: checkpoint {given[k]} vs model {own[k]}'
                  for k in sorted(own.keys() & given.keys()) if own[k] != given[k]]
    return (mismatched, [prefix + k for k in sorted(own.keys() - given.keys())],
            [prefix + k for k in sorted(given.keys() - own.keys())])


def checkpoint_mismatches(model: nn.Module, shapes: Mapping[str, tuple]) -> list[str]:
    """What keeps ``shapes`` (from :func:`state_shapes`) from loading strictly into ``model``:
    one ``'N shape mismatches: ...'``, ``'N missing keys: ...'`` or ``'N unexpected keys:
    ...'`` entry per kind, empty if it fits."""
    wrong, missing, extra = key_mismatches(state_shapes(model.state_dict(), False), shapes)
    return listing((('shape mismatches', wrong), ('missing keys', missing),
                    ('unexpected keys', extra)))


def check_checkpoint_fits_model(model: nn.Module, shapes: Mapping[str, tuple], source: str,
                                config: str, meta: Optional[Mapping] = None) -> None:
    """Refuse to resume from ``source`` unless its tensors fit ``model`` exactly.

    Args:
        model (nn.Module): The model ``config`` builds (unwrapped).
        shapes (Mapping[str, tuple]): The checkpoint's state dict shapes
            (:func:`state_shapes`).
        source (str): The checkpoint, for the message.
        config (str): The config, for the message.
        meta (Mapping, optional): The checkpoint's ``meta``; its ``experiment_name``
            (which MMEngine records) is named in the message.

    Raises:
        CheckpointMismatchError: counting and listing the first mismatched shapes,
            missing and unexpected keys.
    """
    problems = checkpoint_mismatches(model, shapes)
    if not problems:
        return
    run = (meta or {}).get('experiment_name')
    written = f' (written by the run {run})' if run else ''
    raise CheckpointMismatchError(
        f'{source}{written} does not fit the {type(model).__name__} that {config} builds; '
        f'nothing was loaded: {"; ".join(problems)}. --resume continues a run with the '
        'config it was started with; to start a new run from these weights, set load_from '
        'instead')
