"""Reading config files, with errors that name the file, and ``--cfg-options`` that are
checked against the config before they are merged.

MMEngine's ``merge_from_dict`` accepts any key: a typo such as ``max_epoch=1`` adds a
setting nobody reads, and training runs its full schedule. :func:`load_config` refuses
an option whose key cannot take effect, with one line naming it and the closest keys
that exist. What stays allowed:

* any key the config already has (its value is replaced, whatever the type);
* a new top-level key that MMEngine's ``Runner`` reads (its ``__init__`` arguments,
  e.g. ``randomness``, ``resume``, ``load_from``, and the few it reads from the config
  itself, e.g. ``compile``), and anything below it;
* a new key inside a dict whose ``type`` builds a class that takes it, or whose class
  takes ``**kwargs`` (then nothing can be told); the loops (``train_cfg``,
  ``val_cfg``, ``test_cfg``) are checked against their loop class and the dataloaders
  against ``torch.utils.data.DataLoader`` (with the keys the Runner takes out first);
* a new key inside another dict without a ``type`` (``env_cfg``, ``default_hooks``,
  ``model.test_cfg``): such dicts are read by whoever gets them, so nothing can be
  told either.

A top-level variable that settings below copied when the file was read (``max_epochs``
in ``train_cfg.max_epochs``, ``data_root`` in the datasets) is refused too: changing
it afterwards has no effect, and the message names the settings to change instead.
"""
import argparse
import copy
import difflib
import inspect
import os.path as osp
from importlib import import_module
from typing import Optional

import torch
from mmengine.config import Config, DictAction
from mmengine.utils import get_installed_path

from .errors import ConfigError, InputFileNotFoundError

# Keys MMEngine's Runner reads from the config besides its __init__ arguments
# (mmengine 0.10: runner.py), and the one the tools read to pick the runner class.
RUNNER_CONFIG_KEYS = ('model_wrapper_cfg', 'sync_bn', 'find_unused_parameters',
                      'activation_checkpointing', 'efficient_conv_bn_eval', 'compile',
                      'strategy', 'runner_type')
# Keys the builders take out of a dict before they call its class.
BUILDER_KEYS = frozenset({'type', '_scope_', 'priority', 'constructor', 'paramwise_cfg',
                          'convert_to_iter_based'})
# Arguments the Runner passes to a loop, and the optimizer builder to an optimizer.
PASSED_BY_BUILDER = frozenset({'runner', 'dataloader', 'evaluator', 'params'})
DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
# Keys Runner.build_dataloader takes out of a dataloader dict before calling DataLoader.
DATALOADER_KEYS = frozenset({'dataset', 'sampler', 'batch_sampler', 'collate_fn',
                             'worker_init_fn'})


class UnparsedOption:
    """A ``--cfg-options`` item that is not ``KEY=VALUE``, kept for :func:`load_config`
    to refuse with one line (MMEngine's ``DictAction`` raises inside argparse)."""

    def __init__(self, item: str, reason: str) -> None:
        self.item, self.reason = item, reason

    def __repr__(self) -> str:
        return f'UnparsedOption({self.item!r})'


class CfgOptionsAction(DictAction):
    """MMEngine's ``DictAction`` for ``--cfg-options KEY=VALUE ...``, except that a
    malformed item reaches :func:`load_config`, which names it in one line."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values, option_string: Optional[str] = None) -> None:
        options = copy.copy(getattr(namespace, self.dest, None) or {})
        for item in values or ():
            key, sep, text = item.partition('=')
            if not sep:
                options[item] = UnparsedOption(item, 'expected KEY=VALUE, e.g. '
                                               'train_cfg.max_epochs=12')
                continue
            try:
                options[key] = self._parse_iterable(text)
            except AssertionError as exc:  # DictAction's check of balanced brackets
                options[key] = UnparsedOption(item, f'cannot parse the value: {exc}')
        setattr(namespace, self.dest, options)


def config_path(config: str) -> str:
    """The file behind ``config``, which may name a package's config as in ``_base_``:
    ``'mmdet::faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py'``.

    Raises:
        InputFileNotFoundError: the package is not installed.
    """
    if '::' not in config:
        return config
    package, relative = config.split('::', 1)
    try:
        root = get_installed_path(package)
    except Exception as exc:  # importlib's and pkg_resources' lookups raise different types
        raise InputFileNotFoundError(f'config {config}: package {package!r} is not '
                                     'installed') from exc
    return osp.join(root, '.mim', 'configs', relative)


def load_config(config: str, cfg_options: Optional[dict] = None) -> Config:
    """``Config.fromfile`` with ``cfg_options`` checked (:func:`check_cfg_options`) and
    merged; ``config`` may be a path or a package's config (``mmdet::...``, see
    :func:`config_path`).

    Raises:
        InputFileNotFoundError: ``config`` does not exist.
        ConfigError: ``config`` is not a readable config file, or an option cannot
            take effect.
    """
    path = config_path(config)
    if not osp.isfile(path):
        raise InputFileNotFoundError(f'config file not found: {config}')
    try:
        cfg = Config.fromfile(path)
    except (SyntaxError, OSError, KeyError, TypeError, ValueError, NameError,
            ImportError) as exc:
        raise ConfigError(f'cannot read config {config}: {type(exc).__name__}: {exc}') from exc
    if cfg_options:
        check_cfg_options(cfg, cfg_options, config)
        cfg.merge_from_dict(cfg_options)
    return cfg


def runner_settings() -> set[str]:
    """Top-level keys MMEngine's Runner (or FlexibleRunner) reads."""
    from mmengine.runner import Runner
    names = set(inspect.signature(Runner.__init__).parameters) | set(RUNNER_CONFIG_KEYS)
    try:
        from mmengine.runner import FlexibleRunner
        names |= set(inspect.signature(FlexibleRunner.__init__).parameters)
    except ImportError:  # mmengine < 0.8
        pass
    return names - {'self', 'cfg'}


def check_cfg_options(cfg: Config, options: dict, config: str = 'the config') -> None:
    """Raise unless every key of ``options`` can take effect in ``cfg`` (see the module's
    docstring for what is allowed).

    Raises:
        ConfigError: one line naming the option and the closest keys that exist.
    """
    runner_keys = runner_settings()
    for key, value in options.items():
        if isinstance(value, UnparsedOption):
            raise ConfigError(f'--cfg-options {value.item}: {value.reason}')
        parts = key.split('.')
        if '' in parts:
            raise ConfigError(f'--cfg-options {key}={value}: the key has an empty part')
        if parts[0] not in cfg:
            if parts[0] in runner_keys:
                continue  # a Runner setting the config leaves out: nothing to check against
            raise ConfigError(f'--cfg-options {key}: {config} has no {parts[0]!r} and '
                              f'MMEngine\'s Runner reads no such setting'
                              f'{_suggest(parts[0], set(cfg) | runner_keys, cfg)}')
        if parts[0] not in runner_keys and (copies := _copies_of(cfg, parts[0])):
            raise ConfigError(
                f'--cfg-options {key}: {parts[0]} is a variable of {config} that '
                f'{", ".join(copies[:3])}{" and more" if len(copies) > 3 else ""} copied when '
                f'the file was read, so changing it has no effect; set '
                f'{" and ".join(copies[:3])} instead')
        _check_nested(cfg, cfg[parts[0]], parts, options)


def _check_nested(cfg: Config, node, parts: list[str], options: dict) -> None:
    """Walk ``parts`` down ``node``; a missing key must be one its dict's class takes
    (with the ``type`` the options give that dict, if they change it)."""
    key = '.'.join(parts)
    for depth, part in enumerate(parts[1:], 1):
        where = '.'.join(parts[:depth])
        if isinstance(node, (list, tuple)):
            if not (part.isdigit() and int(part) < len(node)):
                raise ConfigError(f'--cfg-options {key}: {where} is a list of {len(node)} '
                                  f'items; index it with 0 to {len(node) - 1}')
            node = node[int(part)]
        elif not isinstance(node, dict):
            raise ConfigError(f'--cfg-options {key}: {where} is {node!r} in the config, '
                              f'not a dict, so it has no {part!r}')
        elif part in node:
            node = node[part]
        else:
            if f'{where}.type' in options:  # e.g. optim_wrapper.type=AmpOptimWrapper
                node = {**node, 'type': options[f'{where}.type']}
            built = _accepted_keys(node, where)
            if built is None or part in built[1]:
                return
            name, accepted = built
            raise ConfigError(
                f'--cfg-options {key}: {name} ({where}) takes no {part!r} (it takes '
                f'{", ".join(sorted(accepted - BUILDER_KEYS))})'
                f'{_suggest(part, accepted, cfg, prefix=where)}')


def _suggest(name: str, keys: set[str], cfg: Config, prefix: str = '') -> str:
    """'; did you mean ...?' with the closest of ``keys`` (under ``prefix``) or, if none is
    close, the keys anywhere in the config whose last part is close; or ''."""
    close = difflib.get_close_matches(name, keys, n=2)
    close += sorted(k for k in keys if len(name) >= 3 and name in k and k not in close)
    near = [f'{prefix}.{k}' if prefix else k for k in close
            if prefix or k not in cfg or not _copies_of(cfg, k)]
    if not near:
        scored = sorted((-difflib.SequenceMatcher(None, name, str(path[-1])).ratio(),
                         '.'.join(map(str, path)))
                        for path, _ in walk(cfg.to_dict()) if len(path) > 1)
        near = [path for ratio, path in scored if ratio <= -0.8]
    return f'; did you mean {" or ".join(near[:3])}?' if near else ''


def walk(node, path: tuple = (), skip: tuple = ()):
    """(path, value) of every key and item below ``node``, depth first (a path holds
    keys and list indices); the values of the keys in ``skip`` are not entered."""
    items = node.items() if isinstance(node, dict) else (
        enumerate(node) if isinstance(node, (list, tuple)) else ())
    for k, v in items:
        yield (*path, k), v
        if k not in skip:
            yield from walk(v, (*path, k), skip)


def _copies_of(cfg: Config, name: str) -> list[str]:
    """Settings below the top level named ``name`` that hold the top-level ``name``'s
    value: the top-level one is a variable the file already used."""
    value = cfg[name]
    return ['.'.join(map(str, path)) for path, v in walk(cfg.to_dict())
            if len(path) > 1 and path[-1] == name and v == value]


def _accepted_keys(node: dict, where: str) -> Optional[tuple[str, set[str]]]:
    """(class name, keys it accepts) for a dict that builds a class with a closed set of
    arguments; ``None`` when the keys are open (no class, or one taking ``**kwargs``)."""
    cls, extra = _built_class(node, where)
    if cls is None:
        return None
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):  # builtins and C extensions without a signature
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    names = {p.name for p in parameters if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                       inspect.Parameter.KEYWORD_ONLY)}
    from mmengine.runner import BaseLoop
    if isinstance(cls, type) and issubclass(cls, (BaseLoop, torch.optim.Optimizer)):
        names -= PASSED_BY_BUILDER
    return getattr(cls, '__name__', str(cls)), names | BUILDER_KEYS | extra | set(node)


def _built_class(node: dict, where: str) -> tuple[Optional[type], set[str]]:
    """The class (or function) ``node`` builds, and keys its builder also accepts."""
    kind = node.get('type')
    if kind is None and where == 'train_cfg' and 'by_epoch' in node:
        from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
        return (EpochBasedTrainLoop if node['by_epoch'] else IterBasedTrainLoop), {'by_epoch'}
    if kind is None and where in ('val_cfg', 'test_cfg'):
        from mmengine.runner import TestLoop, ValLoop
        return (ValLoop if where == 'val_cfg' else TestLoop), set()
    if kind is None and where in DATALOADERS:
        return torch.utils.data.DataLoader, set(DATALOADER_KEYS)
    if callable(kind):
        return kind, set()
    if not isinstance(kind, str):
        return None, set()
    found = {id(c): c for c in _registry_lookups(kind) if c is not None}
    return (next(iter(found.values())) if len(found) == 1 else None), set()


def _registry_lookups(kind: str) -> list:
    """``kind`` looked up in every registry of mmdet (whose parents are MMEngine's)."""
    from mmengine.registry import Registry
    registry = import_module('mmdet.registry')
    found = []
    for candidate in vars(registry).values():
        if isinstance(candidate, Registry):
            try:
                found.append(candidate.get(kind))
            except Exception:  # a lookup that fails means the class cannot be told
                found.append(None)
    return found
