"""Reading config files, with ``--cfg-options`` checked before they are merged: MMEngine
accepts any key, so a typo adds a setting nobody reads. A new key must be one MMEngine's
Runner reads or one the class of its dict takes (any key, for a dict without a class or
a class taking ``**kwargs``); a top-level variable other settings copied is refused too.
"""
import contextlib
import difflib
import inspect
import os.path as osp
from importlib import import_module
from typing import Optional

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import Registry
from mmengine.runner import Runner
from mmengine.utils import get_installed_path

from .errors import ConfigError, InputFileNotFoundError

# Keys MMEngine's Runner or FlexibleRunner reads besides Runner's arguments, and the tools'.
RUNNER_CONFIG_KEYS = {'model_wrapper_cfg', 'sync_bn', 'find_unused_parameters', 'compile',
                      'activation_checkpointing', 'efficient_conv_bn_eval', 'strategy',
                      'runner_type'}
# Keys the builders take out of a dict before they call its class.
BUILDER_KEYS = {'type', '_scope_', 'priority', 'constructor', 'paramwise_cfg',
                'convert_to_iter_based'}
# Arguments that the Runner and the optimizer builder pass to the classes they build.
PASSED_BY_BUILDER = {'runner', 'dataloader', 'evaluator', 'params'}
DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


class CfgOptionsAction(DictAction):
    """MMEngine's ``DictAction``, with one argparse error line for a malformed item."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        for item in values:
            if '=' not in item:
                parser.error(f'--cfg-options {item}: expected KEY=VALUE, e.g. '
                             'train_cfg.max_epochs=12')
            try:
                self._parse_iterable(item.split('=', 1)[1])
            except AssertionError as exc:  # DictAction's check of balanced brackets
                parser.error(f'--cfg-options {item}: cannot parse the value: {exc}')
        super().__call__(parser, namespace, values, option_string)


def load_config(config: str, cfg_options: Optional[dict] = None) -> Config:
    """``Config.fromfile`` of a path or a package's config (``mmdet::faster_rcnn/...``) with
    ``cfg_options`` checked and merged; InputFileNotFoundError if ``config`` does not exist,
    ConfigError if it cannot be read or an option cannot take effect."""
    path = config
    if '::' in config:
        package, relative = config.split('::', 1)
        try:
            path = osp.join(get_installed_path(package), '.mim', 'configs', relative)
        except Exception as exc:  # importlib's and pkg_resources' lookups raise different types
            raise InputFileNotFoundError(f'config {config}: package {package!r} is not '
                                         'installed') from exc
    if not osp.isfile(path):
        raise InputFileNotFoundError(f'config file not found: {config}')
    try:
        cfg = Config.fromfile(path)
    except (SyntaxError, OSError, KeyError, TypeError, ValueError, NameError,
            ImportError) as exc:
        raise ConfigError(f'cannot read config {config}: {type(exc).__name__}: {exc}') from exc
    for key in cfg_options or {}:
        _check_option(cfg, key, cfg_options, config)
    cfg.merge_from_dict(cfg_options or {})
    return cfg


def walk(node, path: tuple = (), skip: tuple = ()):
    """(path of keys and list indices, value) of everything below ``node``, depth first,
    without entering the values of the keys in ``skip``."""
    items = node.items() if isinstance(node, dict) else (
        enumerate(node) if isinstance(node, (list, tuple)) else ())
    for k, v in items:
        yield (*path, k), v
        if k not in skip:
            yield from walk(v, (*path, k), skip)


def _check_option(cfg: Config, key: str, options: dict, config: str) -> None:
    runner_keys = set(inspect.signature(Runner).parameters) - {'cfg'} | RUNNER_CONFIG_KEYS
    below = [('.'.join(map(str, path)), v) for path, v in walk(cfg.to_dict()) if len(path) > 1]
    parts = key.split('.')
    top = parts[0]
    if top not in cfg:
        if top in runner_keys:
            return  # a Runner setting the config leaves out: nothing to check against
        uncopied = {k for k in cfg if not _copies(below, cfg, k)} | runner_keys
        raise ConfigError(f'--cfg-options {key}: {config} has no {top!r} and MMEngine\'s '
                          f'Runner reads no such setting'
                          f'{_suggest(top, uncopied) or _suggest(top, dict(below), 0.8)}')
    copies = [] if top in runner_keys else _copies(below, cfg, top)
    if copies:
        raise ConfigError(
            f'--cfg-options {key}: {top} is a variable of {config} that '
            f'{", ".join(copies[:3])}{" and more" if len(copies) > 3 else ""} copied when '
            f'the file was read, so changing it has no effect; set '
            f'{" and ".join(copies[:3])} instead')
    node = cfg[top]
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
            kind = torch.utils.data.DataLoader if where in DATALOADERS else options.get(
                f'{where}.type', node.get('type'))  # the type the dict will have
            accepted = _accepted_keys(kind, node)
            if accepted is None or part in accepted | BUILDER_KEYS:
                return
            raise ConfigError(
                f'--cfg-options {key}: {getattr(kind, "__name__", kind)} ({where}) takes no '
                f'{part!r} (it takes {", ".join(sorted(accepted - BUILDER_KEYS))})'
                f'{_suggest(part, {f"{where}.{k}" for k in accepted})}')


def _copies(below: list, cfg: Config, name: str) -> list[str]:
    """The settings below the top level named ``name`` that hold its top-level value."""
    return [path for path, value in below
            if path.rsplit('.', 1)[1] == name and value == cfg[name]]


def _suggest(name: str, keys, cutoff: float = 0.6) -> str:
    """'; did you mean ...?' with the keys whose last part is close to ``name``, or ''."""
    scored = sorted((-difflib.SequenceMatcher(None, name, k.rsplit('.', 1)[-1]).ratio(), k)
                    for k in keys)
    near = [k for ratio, k in scored
            if -ratio >= cutoff or (len(name) >= 3 and name in k.rsplit('.', 1)[-1])]
    return f'; did you mean {" or ".join(near[:3])}?' if near else ''


def _accepted_keys(kind, node: dict) -> Optional[set[str]]:
    """The keys of ``node`` and the arguments the class ``kind`` names (in mmdet's registries,
    which reach MMEngine's) takes; None if that cannot be told (no class, several, **kwargs)."""
    if isinstance(kind, str):
        found = set()
        for registry in vars(import_module('mmdet.registry')).values():
            if isinstance(registry, Registry):
                with contextlib.suppress(Exception):  # a lookup that fails tells nothing
                    found.add(registry.get(kind))
        found.discard(None)
        kind = found.pop() if len(found) == 1 else None
    try:
        parameters = inspect.signature(kind).parameters.values()
    except (TypeError, ValueError):  # None, builtins and C extensions without a signature
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.name not in PASSED_BY_BUILDER} | set(node)
