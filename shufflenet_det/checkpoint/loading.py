"""Loading weights into a model strictly: every key and shape checked before anything is copied.

``load_state_dict`` may copy part of a checkpoint before it raises, and MMEngine's and mmdet's
loaders are non-strict: here a module is loaded completely, or left untouched with an error
that lists what does not match.
"""
import copy
from collections.abc import Mapping, Sequence
from typing import Optional

import torch
from mmengine.logging import print_log
from torch import nn

from ..config import load_config
from ..errors import CheckpointMismatchError
from ..models.backbones import ShuffleNetV1
from ..models.roi_heads import ShuffleNetV1SharedHead
from .files import load_checkpoint_file

STRICT_FALSE_HINT = 'Pass strict=False in the init_cfg to load only the matching tensors.'


def strip_module(key: str) -> str:
    """``key`` without a leading ``module.`` (the prefix DataParallel adds)."""
    return key[len('module.'):] if key.startswith('module.') else key


def state_shapes(state: Mapping, strip: bool = True) -> dict[str, tuple[int, ...]]:
    """``{name: shape}`` of a state dict, without DataParallel's ``module.`` prefix
    (MMEngine's loader drops it too) unless ``strip`` is False."""
    return {strip_module(k) if strip else k: tuple(v.shape) for k, v in state.items()}


def _mismatches(own: Mapping[str, tuple], given: Mapping[str, tuple], prefix: str = '') -> dict:
    """``{'shape mismatches': [...], 'missing keys': [...], 'unexpected keys': [...]}``."""
    return {'shape mismatches': [f'{prefix}{k}: checkpoint {given[k]} vs model {own[k]}'
                                 for k in sorted(own.keys() & given.keys()) if own[k] != given[k]],
            'missing keys': [prefix + k for k in sorted(own.keys() - given.keys())],
            'unexpected keys': [prefix + k for k in sorted(given.keys() - own.keys())]}


def _listing(found: Mapping[str, list], order: Sequence[str], shown: int) -> list[str]:
    """``'N missing keys: a, b ... (+M more)'`` per non-empty kind, in ``order``."""
    return [f'{len(found[what])} {what}: ' + ', '.join(found[what][:shown])
            + (f' ... (+{len(found[what]) - shown} more)' if len(found[what]) > shown else '')
            for what in order if found[what]]


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
                                      f'its keys start with {tops[:8]}')
    return sub


def load_parts(parts: Mapping[str, nn.Module], state: Mapping[str, torch.Tensor],
               source: str, strict: bool = True, hint: str = STRICT_FALSE_HINT) -> int:
    """Load ``state`` into the modules of ``parts`` (key prefix -> module) together; returns
    how many tensors were loaded.

    Each key goes, without its prefix, to the part with the longest matching prefix (``''``
    takes the rest). A missing, unexpected or mis-shaped tensor raises CheckpointMismatchError,
    ending with ``hint``, before anything is copied; with ``strict=False`` the matching tensors
    load and the rest are logged as a warning.
    """
    prefixes = sorted(parts, key=len, reverse=True)
    routed = {p: {} for p in prefixes}
    found = {'missing keys': [], 'unexpected keys': [], 'shape mismatches': []}
    for key, value in state.items():
        prefix = next((p for p in prefixes if key.startswith(p)), None)
        if prefix is None:
            found['unexpected keys'].append(key)
        else:
            routed[prefix][key[len(prefix):]] = value
    for prefix, module in parts.items():
        for what, items in _mismatches(state_shapes(module.state_dict(), False),
                                       state_shapes(routed[prefix], False), prefix).items():
            found[what] += items
    found['unexpected keys'].sort()
    problems = _listing(found, list(found), 8)
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
    """Load ``state`` into ``module`` only if keys and shapes match exactly (else raise
    CheckpointMismatchError and leave ``module`` as it was)."""
    load_parts({'': module}, state, source)


def check_shuffle_order(meta: Mapping, modules: Mapping[str, nn.Module], source: str) -> None:
    """Refuse weights whose ``meta['arch']['shuffle_order']`` differs from that of one of
    ``modules`` (config path -> module): the state dict does not show the permutation, and
    weights for the other shuffle load without complaint and compute something else."""
    wanted = (meta.get('arch') or {}).get('shuffle_order')
    if wanted is None:
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
    """Load a whole-model checkpoint (as :func:`load_checkpoint_file` read it) strictly.

    DataParallel's ``module.`` prefix is dropped, as MMEngine's loader does, and a
    recorded shuffle order must match the model's.
    """
    state = {strip_module(k): v for k, v in ckpt.get('state_dict', ckpt).items()}
    meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), Mapping) else {}
    check_shuffle_order(meta, shufflenet_modules(model), source)
    load_parts({'': model}, state, source,
               hint='The checkpoint was trained with another config than this one.')


def check_checkpoint_fits_model(model: nn.Module, shapes: Mapping[str, tuple], source: str,
                                config: str, meta: Optional[Mapping] = None) -> None:
    """Refuse to resume from ``source`` (its :func:`state_shapes` and ``meta``) unless it fits
    ``model`` exactly; ``Runner.resume`` loads non-strictly and fails later, or trains on."""
    problems = _listing(_mismatches(state_shapes(model.state_dict(), False), shapes),
                        ('shape mismatches', 'missing keys', 'unexpected keys'), 4)
    if not problems:
        return
    run = (meta or {}).get('experiment_name')
    written = f' (written by the run {run})' if run else ''
    raise CheckpointMismatchError(
        f'{source}{written} does not fit the {type(model).__name__} that {config} builds; '
        f'nothing was loaded: {"; ".join(problems)}. --resume continues a run with the '
        'config it was started with; to start a new run from these weights, set load_from '
        'instead')


def load_detector(config: str, checkpoint: str, device: str = 'cpu') -> nn.Module:
    """mmdet's ``init_detector``, with the checkpoint read once and loaded strictly.

    The model is built as ``init_detector`` builds it (default scope, SyncBN turned into BN,
    ``model.cfg`` set). Its classes come from the checkpoint's ``meta['dataset_meta']`` (or
    older ``meta['CLASSES']``), else from the config's test dataset (``init_detector`` would
    use COCO's); its palette from the test dataset, else the checkpoint, else ``'random'``.

    Raises:
        InputError: a missing or broken config or checkpoint, or one that does not fit.
    """
    from mmdet.registry import DATASETS, MODELS
    from mmengine.model.utils import revert_sync_batchnorm
    from mmengine.registry import init_default_scope

    ckpt = load_checkpoint_file(checkpoint)
    cfg = load_config(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    load_model_checkpoint(model, ckpt, checkpoint)
    dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    dataset_cfg['lazy_init'] = True  # only the metainfo: no annotation file is read
    metainfo = DATASETS.build(dataset_cfg).metainfo
    recorded = ckpt.get('meta') or {}
    if recorded.get('dataset_meta'):
        meta = {k.lower(): v for k, v in recorded['dataset_meta'].items()}
    else:
        meta = dict(classes=recorded.get('CLASSES') or metainfo['classes'])
    meta['palette'] = metainfo.get('palette') or meta.get('palette') or 'random'
    model.dataset_meta = meta
    model.cfg = cfg
    return model.to(device).eval()
