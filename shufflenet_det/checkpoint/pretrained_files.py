"""The ImageNet checkpoints a model config reads: present before training, or left out on purpose.

A detector config names its ImageNet checkpoint in an ``init_cfg``. Without the
file, training must not start: random weights with a frozen stem and BN statistics
kept at their initial values (``norm_eval``) would train for days to a useless
model. :func:`check_pretrained_files` refuses such a run up front, with the way to
get the file. Training from scratch is a choice (``tools/train.py --from-scratch``):
:func:`configure_training_from_scratch` then removes the checkpoint and lets every BN
layer and every stage train.
"""
import logging
import os.path as osp
import re
from collections.abc import MutableMapping
from typing import Optional

from mmengine.logging import print_log

from ..config import walk
from ..errors import ConfigError, InputFileNotFoundError
from .files import checkpoint_exists

# Initialisers that read a checkpoint file (MMEngine's and this project's).
PRETRAINED_INITIALISERS = ('ShuffleNetPretrained', 'StrictPretrained', 'Pretrained')
# Modules that keep BN statistics or stages fixed when so configured.
_SHUFFLENET_MODULES = ('ShuffleNetV1', 'ShuffleNetV1SharedHead')
MEGVII_WEIGHTS_URL = 'https://1drv.ms/f/s!AgaP37NGYuEXhRfQxHRseR7eSxXo'
_PROJECT_NAME = re.compile(r'shufflenet_v1_(?P<widen>[\d.]+)x_g(?P<groups>\d+)_imagenet\.pth$')


def how_to_get(path: str) -> str:
    """The download and converter commands that produce the ImageNet checkpoint ``path``."""
    found = _PROJECT_NAME.search(osp.basename(path))
    source = (f'snetv1_group{int(found["groups"])}_{float(found["widen"])}x.pth.tar' if found
              else 'snetv1_groupG_Wx.pth.tar')
    return (f'download {source} from Megvii\'s ShuffleNet-Series ({MEGVII_WEIGHTS_URL}, folder '
            f'ShuffleNetV1/) and run: python tools/convert_checkpoint.py {source} {path}')


def _nodes(model_cfg, where: str = 'model'):
    """``(config path, mapping)`` of ``model_cfg`` and each mapping below it, ``init_cfg``
    values not entered."""
    for path, node in [((), model_cfg), *walk(model_cfg, skip=('init_cfg',))]:
        if isinstance(node, MutableMapping):
            yield where + ''.join(f'[{k}]' if isinstance(k, int) else f'.{k}' for k in path), node


def _file_inits(node: MutableMapping) -> list[MutableMapping]:
    """The items of ``node``'s ``init_cfg`` that read a checkpoint file."""
    init = node.get('init_cfg')
    return [item for item in (init if isinstance(init, (list, tuple)) else [init])
            if isinstance(item, MutableMapping) and item.get('type') in PRETRAINED_INITIALISERS
            and item.get('checkpoint')]


def pretrained_init_cfgs(model_cfg, where: str = 'model') -> list[tuple[str, MutableMapping]]:
    """``(config path, init_cfg)`` of every ``init_cfg`` in ``model_cfg`` that reads a file."""
    return [(f'{path}.init_cfg', item) for path, node in _nodes(model_cfg, where)
            for item in _file_inits(node)]


def missing_checkpoint_error(path: str, where: str) -> InputFileNotFoundError:
    """The error for an ImageNet checkpoint ``path`` (named at ``where``) that does not exist."""
    return InputFileNotFoundError(
        f'pretrained checkpoint {path} ({where}) not found. To get it, {how_to_get(path)}. '
        'To train from scratch instead, pass --from-scratch to tools/train.py (it also lets '
        'every BN layer and stage train)')


def check_pretrained_files(model_cfg) -> None:
    """Refuse a model config whose pretrained checkpoint files do not exist.

    An ``init_cfg`` with ``missing_ok=True`` is left to its initialiser, which
    allows the fallback only where every BN layer and stage trains.

    Raises:
        InputFileNotFoundError: naming the first missing file, where the config names
            it, how to get it, and ``--from-scratch``.
    """
    for where, init in pretrained_init_cfgs(model_cfg):
        if not checkpoint_exists(init['checkpoint']) and not init.get('missing_ok'):
            raise missing_checkpoint_error(init['checkpoint'], where)


def _fixed_parts(model_cfg):
    """``(config path, module config)`` of each module config with BN or stage settings."""
    for where, node in _nodes(model_cfg):
        kind = node.get('type')
        kind = getattr(kind, '__name__', kind)
        if kind in _SHUFFLENET_MODULES or 'norm_eval' in node or 'frozen_stages' in node:
            yield where, kind, node


def configure_training_from_scratch(model_cfg) -> list[str]:
    """Change ``model_cfg`` in place for training without ImageNet weights.

    Every ``init_cfg`` that reads a checkpoint is removed (the modules keep their own
    initialisation), and every module that keeps BN statistics or stages fixed is set
    to train them: ``norm_eval=False``, and ``frozen_stages=-1`` where the module has
    stages (ShuffleNetV1, or any module configured with ``frozen_stages``).

    Returns:
        list[str]: What was changed, e.g. ``'model.backbone: norm_eval=False'``.
    """
    changes = []
    for where, init in pretrained_init_cfgs(model_cfg):
        changes.append(f'{where}: {init["checkpoint"]} not loaded')
    _remove_pretrained(model_cfg)
    for where, kind, part in list(_fixed_parts(model_cfg)):  # then change them
        settings = dict(norm_eval=False)
        if kind == 'ShuffleNetV1' or 'frozen_stages' in part:
            settings['frozen_stages'] = -1
        part.update(settings)
        changes.append(f'{where}: ' + ', '.join(f'{k}={v}' for k, v in settings.items()))
    return changes


def _remove_pretrained(model_cfg) -> None:
    for _, node in list(_nodes(model_cfg)):
        reads = _file_inits(node)
        if reads:
            init = node['init_cfg']
            kept = [i for i in init if i not in reads] if isinstance(init, (list, tuple)) else []
            node['init_cfg'] = kept or None


def _fixed_settings(module) -> list[str]:
    """``'backbone (ShuffleNetV1): norm_eval=True, frozen_stages=0'`` for each part of
    ``module`` that keeps BN statistics or stages fixed."""
    fixed = []
    for name, part in module.named_modules():
        settings = (['norm_eval=True'] if getattr(part, 'norm_eval', False) else []) + \
            ([f'frozen_stages={part.frozen_stages}']
             if getattr(part, 'frozen_stages', -1) >= 0 else [])
        if settings:
            fixed.append(f'{name or "the module"} ({type(part).__name__}): {", ".join(settings)}')
    return fixed


def scratch_misconfiguration(module, missing: str) -> Optional[ConfigError]:
    """The error for ``missing_ok`` training a module from scratch that keeps BN or stages fixed.

    ``missing_ok=True`` lets a missing checkpoint fall back to the default
    initialisation; with ``norm_eval=True`` the BN statistics would then stay at 0
    and 1, and frozen stages would keep their random weights.

    Returns:
        ConfigError or None: None when every BN layer and stage of ``module`` trains.
    """
    fixed = _fixed_settings(module)
    if not fixed:
        return None
    return ConfigError(
        f'pretrained checkpoint {missing} not found, and missing_ok=True would train from '
        f'scratch a model that keeps BN statistics or stages fixed ({"; ".join(fixed)}): its '
        'BN statistics would stay at 0 and 1 and its frozen stages random. Get the file '
        f'({how_to_get(missing)}), or train from scratch with tools/train.py --from-scratch, '
        'which sets norm_eval=False and frozen_stages=-1')


def raise_unless_missing_ok(module, checkpoint: str, missing_ok: bool) -> bool:
    """What an initialiser does when ``checkpoint`` does not exist: with ``missing_ok``
    (and nothing in ``module`` kept fixed) log a warning and return False, else raise.

    Raises:
        InputFileNotFoundError: ``missing_ok`` is False; says how to get the file.
        ConfigError: ``module`` keeps BN statistics or stages fixed
            (:func:`scratch_misconfiguration`).
    """
    where = f'init_cfg of {type(module).__name__}'
    if not missing_ok:
        raise missing_checkpoint_error(checkpoint, where)
    error = scratch_misconfiguration(module, checkpoint)
    if error is not None:
        raise error
    print_log(f'pretrained checkpoint {checkpoint} ({where}) not found: training from scratch '
              f'(missing_ok=True). To get it, {how_to_get(checkpoint)}.', logger='current',
              level=logging.WARNING)
    return False
