"""Strict loading of pretrained weights.

MMEngine's ``Pretrained`` initialiser loads with ``strict=False`` and only logs
what it skipped, and ``nn.Module.load_state_dict`` may copy part of a checkpoint
before it raises on a shape mismatch. Here every key and shape is checked first;
a module is either loaded completely or left untouched with an error that names
what does not match.

:class:`StrictPretrainedInit` is registered in MMEngine's ``WEIGHT_INITIALIZERS``
as ``'StrictPretrained'``. The ShuffleNet modules turn their ``init_cfg=dict(
type='Pretrained', ...)`` into it by that name, so that ``models/`` never imports
this package (imports point down: models, then checkpoint).
"""
from collections.abc import Mapping
from typing import Optional

import torch
from mmengine.logging import print_log
from mmengine.registry import WEIGHT_INITIALIZERS
from torch import nn

from ..errors import CheckpointMismatchError
from ..models.backbones import ShuffleNetV1
from ..models.roi_heads import ShuffleNetV1SharedHead
from .files import checkpoint_exists, read_checkpoint
from .formats import strip_module
from .model_match import key_mismatches, listing, state_shapes
from .pretrained_files import raise_unless_missing_ok

_SHOWN_KEYS = 8
_STRICT_FALSE_HINT = 'Pass strict=False in the init_cfg to load only the matching tensors.'


def select_prefix(state: Mapping[str, torch.Tensor], prefix: Optional[str],
                  source: str) -> dict[str, torch.Tensor]:
    """Keys of ``state`` under ``prefix``, with the prefix removed.

    Raises:
        CheckpointMismatchError: nothing in ``state`` starts with ``prefix``.
    """
    if not prefix:
        return dict(state)
    sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not sub:
        tops = sorted({k.split('.', 1)[0] + '.' for k in state})
        raise CheckpointMismatchError(f'{source} has no keys starting with prefix {prefix!r}; '
                                      f'its keys start with {tops[:_SHOWN_KEYS]}')
    return sub


def _route(parts: Mapping[str, nn.Module], state: Mapping[str, torch.Tensor]):
    """Each key to the part with the longest matching prefix; returns (routed, problems)."""
    prefixes = sorted(parts, key=len, reverse=True)
    routed = {p: {} for p in prefixes}
    unused = []
    for key, value in state.items():
        prefix = next((p for p in prefixes if key.startswith(p)), None)
        if prefix is None:
            unused.append(key)
        else:
            routed[prefix][key[len(prefix):]] = value
    missing, mismatched = [], []
    for prefix, module in parts.items():
        wrong, absent, extra = key_mismatches(state_shapes(module.state_dict(), False),
                                              state_shapes(routed[prefix], False), prefix)
        mismatched, missing, unused = mismatched + wrong, missing + absent, unused + extra
    problems = listing((('missing keys', missing), ('unexpected keys', sorted(unused)),
                        ('shape mismatches', mismatched)), _SHOWN_KEYS)
    return routed, problems


def load_parts(parts: Mapping[str, nn.Module], state: Mapping[str, torch.Tensor],
               source: str, strict: bool = True, hint: str = _STRICT_FALSE_HINT) -> int:
    """Load one state dict into several modules, checked together before anything is copied.

    Each key goes to the part with the longest matching key prefix (``''`` takes the
    rest) with that prefix removed. Every part must receive exactly its own keys
    with their shapes, and every key must be used.

    Args:
        parts (Mapping[str, nn.Module]): Key prefix -> module.
        state (Mapping[str, Tensor]): The weights.
        source (str): Where ``state`` came from, for the error message.
        strict (bool): If False, load the tensors whose names and shapes match,
            and log what does not match as a warning instead of raising. For
            users who mean a partial load. Default: True.
        hint (str): The advice ending the error message. Default: how to ask for
            a partial load.

    Returns:
        int: The number of tensors loaded.

    Raises:
        CheckpointMismatchError: (``strict=True``) listing missing keys, unused keys
            and shape mismatches; no module is modified.
    """
    routed, problems = _route(parts, state)
    names = ' + '.join(type(m).__name__ for m in parts.values())
    if problems and strict:
        raise CheckpointMismatchError(f'{source} does not match {names}; nothing was loaded. '
                                      + '; '.join(problems) + '. ' + hint)
    loaded = 0
    for prefix, module in parts.items():
        own = module.state_dict()
        matching = {k: v for k, v in routed[prefix].items()
                    if k in own and own[k].shape == v.shape}
        module.load_state_dict(matching, strict=not problems)
        loaded += len(matching)
    if problems:
        print_log(f'partial load (strict=False) of {source} into {names}: loaded {loaded} '
                  'tensors; the rest keep their initialisation. ' + '; '.join(problems),
                  logger='current', level=30)
    return loaded


def load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``module`` only if keys and shapes match exactly.

    Raises:
        CheckpointMismatchError: listing missing keys, unexpected keys and shape
            mismatches. ``module`` is not modified.
    """
    load_parts({'': module}, state, source)


def check_shuffle_order(meta: Mapping, modules: Mapping[str, nn.Module], source: str) -> None:
    """Refuse weights whose recorded shuffle order differs from a module's.

    The permutation is not in the state dict: weights converted for the official
    code's inverse shuffle load without complaint into a network that applies the
    paper's, and compute something else. The converter records the order in
    ``meta['arch']['shuffle_order']``; files that record none are not checked.

    Args:
        meta (Mapping): The checkpoint's ``meta``.
        modules (Mapping[str, nn.Module]): Config path (e.g. ``'model.backbone'``) ->
            module with a ``shuffle_order`` attribute.
        source (str): The file, for the message.

    Raises:
        CheckpointMismatchError: naming the file's order and the module's.
    """
    wanted = (meta.get('arch') or {}).get('shuffle_order')
    if wanted is None:  # a file that records no order: nothing to check against
        return
    for name, module in modules.items():
        have = getattr(module, 'shuffle_order', wanted)
        if have != wanted:
            raise CheckpointMismatchError(
                f"{source} holds weights for shuffle_order='{wanted}' (recorded in its "
                f"meta['arch']), but {name} is built with shuffle_order='{have}'; the weights "
                f"would load and compute something else. Set shuffle_order='{wanted}' on {name} in "
                f"the config.")


def shufflenet_modules(model: nn.Module, prefix: str = 'model') -> dict[str, nn.Module]:
    """``{'model.backbone': ..., 'model.roi_head.shared_head': ...}``: the modules of
    ``model`` that apply a channel shuffle order."""
    return {f'{prefix}.{name}' if name else prefix: m for name, m in model.named_modules()
            if isinstance(m, (ShuffleNetV1, ShuffleNetV1SharedHead))}


def load_model_checkpoint(model: nn.Module, ckpt: Mapping, source: str) -> None:
    """Load a whole-model checkpoint (as ``load_checkpoint_file`` read it) strictly.

    DataParallel's ``module.`` prefix is dropped, as MMEngine's loader does, and a
    recorded shuffle order must match the model's.

    Raises:
        CheckpointMismatchError: a missing, unexpected or mis-shaped tensor, or a
            shuffle order other than the model's; ``model`` is not modified.
    """
    state = ckpt.get('state_dict', ckpt)
    state = {strip_module(k): v for k, v in state.items()}
    meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), Mapping) else {}
    check_shuffle_order(meta, shufflenet_modules(model), source)
    load_parts({'': model}, state, source,
               hint='The checkpoint was trained with another config than this one.')


def _c4_hint(module: nn.Module, state: Mapping[str, torch.Tensor]) -> Optional[str]:
    """The advice for a classifier checkpoint given to a backbone that stops early."""
    if not isinstance(module, ShuffleNetV1) or module.num_stages == 3:
        return None
    extra = f'layers.{module.num_stages}.'
    if not any(k.startswith(extra) for k in state):
        return None
    return (f'This backbone stops after Stage {module.num_stages + 1} (num_stages='
            f'{module.num_stages}): in the C4 layout Stage 4 lives in the RoI head '
            f'(roi_head.shared_head), so the checkpoint\'s {extra}* have no place in the '
            'backbone, and strict=False would leave the RoI head\'s Stage 4 untrained. '
            'Initialise the whole detector instead, as the C4 configs do: '
            "model.init_cfg=dict(type='ShuffleNetPretrained', checkpoint=...) sends "
            f'{extra}* to the RoI head (shufflenet_det/checkpoint/detector_init.py).')


@WEIGHT_INITIALIZERS.register_module(name='StrictPretrained')
class StrictPretrainedInit:
    """``dict(type='Pretrained', checkpoint, prefix=None)`` of a ShuffleNet module, strictly.

    Args:
        checkpoint (str): Path or URL.
        prefix (str, optional): Key prefix to select and strip, e.g. 'backbone.'.
        map_location (str): Where to load tensors. Default: 'cpu'.
        missing_ok (bool): A local checkpoint that does not exist is reported as a
            warning and nothing is loaded, provided every BN layer and stage of the
            module trains (no ``norm_eval``, no frozen stage); otherwise the run is
            refused. Default: False: a missing file is an error saying how to get it.
        strict (bool): False loads only the tensors whose names and shapes match,
            listing the rest in a warning. Default: True.
    """

    def __init__(self, checkpoint: str, prefix: Optional[str] = None, map_location: str = 'cpu',
                 missing_ok: bool = False, strict: bool = True) -> None:
        self.checkpoint = checkpoint
        self.prefix = prefix
        self.map_location = map_location
        self.missing_ok = missing_ok
        self.strict = strict

    def __call__(self, module: nn.Module) -> bool:
        """Load into ``module``; returns False if the file is missing and that is allowed."""
        path, prefix = self.checkpoint, self.prefix
        if not checkpoint_exists(path):
            return raise_unless_missing_ok(module, path, self.missing_ok)
        state, meta = read_checkpoint(path, self.map_location)
        state = select_prefix(state, prefix, path)
        where = f'{path}' + (f' (prefix {prefix!r})' if prefix else '')
        check_shuffle_order(meta, {type(module).__name__: module}, where)
        hint = _c4_hint(module, state)
        loaded = load_parts({'': module}, state, where, strict=self.strict,
                            hint=hint or _STRICT_FALSE_HINT)
        print_log(f'{type(module).__name__}: loaded {loaded} tensors from {where}',
                  logger='current')
        if isinstance(module, (ShuffleNetV1, ShuffleNetV1SharedHead)):  # no data_preprocessor
            convention = meta.get('input_convention', 'not recorded')
            print_log(f'the input convention of {where} ({convention}) is not checked here: set '
                      "model.init_cfg=dict(type='ShuffleNetPretrained', checkpoint=...) on a "
                      'detector to have it checked', logger='current', level=30)
        return True
