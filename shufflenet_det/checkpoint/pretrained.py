"""Initialising a model from an ImageNet checkpoint through its ``init_cfg``, strictly.

A ShuffleNet module's own ``init_cfg=dict(type='Pretrained')`` becomes ``'StrictPretrained'``
by registry name (``models/`` never imports this package); ``'ShuffleNetPretrained'`` on a
detector also routes Stage 4 to the C4 head and checks the input convention: how the weights
expect images (Megvii's: BGR 0-255; OpenMMLab's: RGB with ImageNet statistics), known from
``meta['input_convention']``, the ``init_cfg``, or OpenMMLab's classifier layout. A missing
file is refused with the way to get it, unless training from scratch is chosen.
"""
import logging
import os.path as osp
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Optional, Union

from mmengine.logging import print_log
from mmengine.registry import WEIGHT_INITIALIZERS
from torch import nn

from ..config import walk
from ..errors import ConfigError, InputFileNotFoundError
from ..models.backbones import ShuffleNetV1
from ..models.roi_heads import ShuffleNetV1SharedHead
from .convert import OPENMMLAB_FORMAT, OPENMMLAB_INPUT_CONVENTION, missing_required
from .files import checkpoint_exists, read_checkpoint
from .loading import STRICT_FALSE_HINT, check_shuffle_order, load_parts, select_prefix
from .megvii import MEGVII_INPUT_CONVENTION

# Initialisers that read a checkpoint file (MMEngine's and this project's).
PRETRAINED_INITIALISERS = ('ShuffleNetPretrained', 'StrictPretrained', 'Pretrained')
MEGVII_WEIGHTS_URL = 'https://1drv.ms/f/s!AgaP37NGYuEXhRfQxHRseR7eSxXo'
_PROJECT_NAME = re.compile(r'shufflenet_v1_(?P<widen>[\d.]+)x_g(?P<groups>\d+)_imagenet\.pth$')
NAMED_CONVENTIONS = {'megvii': MEGVII_INPUT_CONVENTION, 'openmmlab': OPENMMLAB_INPUT_CONVENTION}
_STATE_IT = ("state it in the initialiser's init_cfg: input_convention='megvii' (BGR 0-255, "
             "not normalised), 'openmmlab' (RGB, mean=[123.675, 116.28, 103.53], std=[58.395, "
             "57.12, 57.375]) or dict(mean=[...], std=[...], bgr_to_rgb=...)")


def how_to_get(path: str) -> str:
    """The download and converter commands that produce the ImageNet checkpoint ``path``."""
    found = _PROJECT_NAME.search(osp.basename(path))
    source = (f'snetv1_group{int(found["groups"])}_{float(found["widen"])}x.pth.tar' if found
              else 'snetv1_groupG_Wx.pth.tar')
    return (f'download {source} from Megvii\'s ShuffleNet-Series ({MEGVII_WEIGHTS_URL}, folder '
            f'ShuffleNetV1/) and run: python tools/convert_checkpoint.py {source} {path}')


def _missing_checkpoint_error(path: str, where: str) -> InputFileNotFoundError:
    return InputFileNotFoundError(
        f'pretrained checkpoint {path} ({where}) not found. To get it, {how_to_get(path)}. '
        'To train from scratch instead, pass --from-scratch to tools/train.py (it also lets '
        'every BN layer and stage train)')


def _nodes(model_cfg):
    """``(config path, mapping)`` of ``model_cfg`` and each mapping below it, ``init_cfg``
    values not entered."""
    for path, node in [((), model_cfg), *walk(model_cfg, skip=('init_cfg',))]:
        if isinstance(node, MutableMapping):
            yield 'model' + ''.join(f'[{k}]' if isinstance(k, int) else f'.{k}' for k in path), node


def _file_inits(node: MutableMapping) -> list[MutableMapping]:
    """The items of ``node``'s ``init_cfg`` that read a checkpoint file."""
    init = node.get('init_cfg')
    return [item for item in (init if isinstance(init, (list, tuple)) else [init])
            if isinstance(item, MutableMapping) and item.get('type') in PRETRAINED_INITIALISERS
            and item.get('checkpoint')]


def pretrained_init_cfgs(model_cfg) -> list[tuple[str, MutableMapping]]:
    """``(config path, init_cfg)`` of every ``init_cfg`` in ``model_cfg`` that reads a file."""
    return [(f'{path}.init_cfg', item) for path, node in _nodes(model_cfg)
            for item in _file_inits(node)]


def check_pretrained_files(model_cfg) -> None:
    """Refuse a model config whose pretrained files do not exist (unless ``missing_ok``),
    naming the first, where the config names it, how to get it, and ``--from-scratch``."""
    for where, init in pretrained_init_cfgs(model_cfg):
        if not checkpoint_exists(init['checkpoint']) and not init.get('missing_ok'):
            raise _missing_checkpoint_error(init['checkpoint'], where)


def configure_training_from_scratch(model_cfg) -> list[str]:
    """Remove every ``init_cfg`` that reads a checkpoint from ``model_cfg`` and let every BN
    layer and stage train; returns the changes (``'model.backbone: norm_eval=False'``)."""
    changes = []
    for where, node in list(_nodes(model_cfg)):
        reads = _file_inits(node)
        changes += [f'{where}.init_cfg: {init["checkpoint"]} not loaded' for init in reads]
        if reads:
            init = node['init_cfg']
            kept = [i for i in init if i not in reads] if isinstance(init, (list, tuple)) else []
            node['init_cfg'] = kept or None
    for where, node in list(_nodes(model_cfg)):
        kind = getattr(node.get('type'), '__name__', node.get('type'))
        if kind in ('ShuffleNetV1', 'ShuffleNetV1SharedHead') or 'norm_eval' in node or \
                'frozen_stages' in node:
            settings = dict(norm_eval=False)
            if kind == 'ShuffleNetV1' or 'frozen_stages' in node:
                settings['frozen_stages'] = -1
            node.update(settings)
            changes.append(f'{where}: ' + ', '.join(f'{k}={v}' for k, v in settings.items()))
    return changes


def _unless_missing_ok(module: nn.Module, checkpoint: str, missing_ok: bool) -> None:
    """What an initialiser does when ``checkpoint`` does not exist: with ``missing_ok`` and
    nothing in ``module`` kept fixed, log a warning; else raise."""
    where = f'init_cfg of {type(module).__name__}'
    if not missing_ok:
        raise _missing_checkpoint_error(checkpoint, where)
    fixed = []
    for name, part in module.named_modules():
        settings = (['norm_eval=True'] if getattr(part, 'norm_eval', False) else []) + \
            ([f'frozen_stages={part.frozen_stages}']
             if getattr(part, 'frozen_stages', -1) >= 0 else [])
        if settings:
            fixed.append(f'{name or "the module"} ({type(part).__name__}): {", ".join(settings)}')
    if fixed:
        raise ConfigError(
            f'pretrained checkpoint {checkpoint} not found, and missing_ok=True would train '
            f'from scratch a model that keeps BN statistics or stages fixed ({"; ".join(fixed)}):'
            ' its BN statistics would stay at 0 and 1 and its frozen stages random. Get the '
            f'file ({how_to_get(checkpoint)}), or train from scratch with tools/train.py '
            '--from-scratch, which sets norm_eval=False and frozen_stages=-1')
    print_log(f'pretrained checkpoint {checkpoint} ({where}) not found: training from scratch '
              f'(missing_ok=True). To get it, {how_to_get(checkpoint)}.', logger='current',
              level=logging.WARNING)


def _rounded(convention: Mapping) -> dict:
    return dict(mean=[round(float(v), 4) for v in convention['mean']],
                std=[round(float(v), 4) for v in convention['std']],
                bgr_to_rgb=bool(convention['bgr_to_rgb']))


def parse_input_convention(value: Union[None, str, Mapping]) -> Optional[dict]:
    """A stated ``input_convention`` as ``dict(mean, std, bgr_to_rgb)``; ``None`` stays None."""
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


def resolve_input_convention(meta: Mapping, state: Mapping, stated: Optional[dict],
                             source: str) -> tuple[dict, str]:
    """The convention the weights of ``source`` expect, and where that is known from."""
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
    if not missing_required(state, OPENMMLAB_FORMAT):
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


def check_input_convention(expected: Mapping, preprocessor: nn.Module, source: str,
                           origin: str = "recorded in the file's meta") -> None:
    """Raise ConfigError, naming both, unless ``preprocessor`` normalises images as
    ``expected`` (``mean``, ``std``, ``bgr_to_rgb``; known from ``origin``) says."""
    want = _rounded(expected)
    have = dict(mean=[0.0] * 3, std=[1.0] * 3,  # a preprocessor that does not normalise
                bgr_to_rgb=bool(getattr(preprocessor, '_channel_conversion', False)))
    if getattr(preprocessor, '_enable_normalize', False):
        have.update(mean=[round(v, 4) for v in preprocessor.mean.flatten().tolist()],
                    std=[round(v, 4) for v in preprocessor.std.flatten().tolist()])
    if have != want:
        raise ConfigError(
            f'{source} was trained on images normalised with mean={want["mean"]}, '
            f'std={want["std"]}, bgr_to_rgb={want["bgr_to_rgb"]} ({origin}), but the '
            f'detector\'s data_preprocessor uses mean={have["mean"]}, std={have["std"]}, '
            f'bgr_to_rgb={have["bgr_to_rgb"]}. Set model.data_preprocessor to the '
            "checkpoint's values")


@WEIGHT_INITIALIZERS.register_module(name='StrictPretrained')
@dataclass
class StrictPretrainedInit:
    """``dict(type='Pretrained', checkpoint, prefix=None)`` of a ShuffleNet module, strictly.

    Args:
        checkpoint (str): Path or URL.
        prefix (str, optional): Key prefix to select and strip, e.g. 'backbone.'.
        map_location (str): Where to load tensors. Default: 'cpu'.
        missing_ok (bool): A missing local file is a warning and loads nothing, provided
            every BN layer and stage trains. Default: False: an error saying how to get it.
        strict (bool): False loads only the tensors whose names and shapes match,
            listing the rest in a warning. Default: True.
    """
    checkpoint: str
    prefix: Optional[str] = None
    map_location: str = 'cpu'
    missing_ok: bool = False
    strict: bool = True

    def __call__(self, module: nn.Module) -> bool:
        """Load into ``module``; returns False if the file is missing and that is allowed."""
        path, prefix = self.checkpoint, self.prefix
        if not checkpoint_exists(path):
            _unless_missing_ok(module, path, self.missing_ok)
            return False
        state, meta = read_checkpoint(path, self.map_location)
        state = select_prefix(state, prefix, path)
        where = f'{path}' + (f' (prefix {prefix!r})' if prefix else '')
        check_shuffle_order(meta, {type(module).__name__: module}, where)
        hint = STRICT_FALSE_HINT
        extra = f'layers.{getattr(module, "num_stages", 3)}.'
        if isinstance(module, ShuffleNetV1) and any(k.startswith(extra) for k in state):
            # A classifier checkpoint on a backbone that stops early (the C4 layout).
            hint = (f'This backbone stops after Stage {module.num_stages + 1} (num_stages='
                    f'{module.num_stages}): in the C4 layout Stage 4 lives in the RoI head '
                    f'(roi_head.shared_head), so the checkpoint\'s {extra}* have no place in the '
                    'backbone, and strict=False would leave the RoI head\'s Stage 4 untrained. '
                    'Initialise the whole detector instead, as the C4 configs do: '
                    "model.init_cfg=dict(type='ShuffleNetPretrained', checkpoint=...) sends "
                    f'{extra}* to the RoI head (shufflenet_det/checkpoint/pretrained.py).')
        loaded = load_parts({'': module}, state, where, strict=self.strict, hint=hint)
        print_log(f'{type(module).__name__}: loaded {loaded} tensors from {where}',
                  logger='current')
        if isinstance(module, (ShuffleNetV1, ShuffleNetV1SharedHead)):  # no data_preprocessor
            convention = meta.get('input_convention', 'not recorded')
            print_log(f'the input convention of {where} ({convention}) is not checked here: set '
                      "model.init_cfg=dict(type='ShuffleNetPretrained', checkpoint=...) on a "
                      'detector to have it checked', logger='current', level=30)
        return True


@WEIGHT_INITIALIZERS.register_module(name='ShuffleNetPretrained')
@dataclass(repr=False)
class ShuffleNetPretrainedInit(StrictPretrainedInit):
    """:class:`StrictPretrainedInit` of a whole detector: ``model.init_cfg=dict(
    type='ShuffleNetPretrained', checkpoint=...)`` loads the backbone and the C4 head.

    Args:
        prefix (str): Key prefix of the backbone in the file. Default: 'backbone.'.
        input_convention (str | dict, optional): How the weights expect images, for files
            that do not record it: ``'megvii'``, ``'openmmlab'`` or ``dict(mean=[...],
            std=[...], bgr_to_rgb=...)``. Default: None (recorded, or told from the layout).
    """
    prefix: Optional[str] = 'backbone.'
    input_convention: Union[None, str, dict] = None

    def __post_init__(self) -> None:
        self.input_convention = parse_input_convention(self.input_convention)

    def __call__(self, detector: nn.Module) -> None:
        if not checkpoint_exists(self.checkpoint):
            _unless_missing_ok(detector, self.checkpoint, self.missing_ok)
            return
        whole, meta = read_checkpoint(self.checkpoint, self.map_location)
        where = f'{self.checkpoint} (prefix {self.prefix!r})'
        state = select_prefix(whole, self.prefix, self.checkpoint)
        backbone = detector.backbone
        parts, named = {'': backbone}, {'model.backbone': backbone}
        shared_head = getattr(getattr(detector, 'roi_head', None), 'shared_head', None)
        if isinstance(shared_head, ShuffleNetV1SharedHead):
            parts[f'layers.{backbone.num_stages}.'] = shared_head.stage4
            named['model.roi_head.shared_head'] = shared_head
        check_shuffle_order(meta, named, where)
        convention, origin = resolve_input_convention(meta, whole, self.input_convention, where)
        check_input_convention(convention, detector.data_preprocessor, where, origin)
        loaded = load_parts(parts, state, where, strict=self.strict)
        # MMEngine applies a detector's init_cfg before its children's init_weights:
        # marked initialised, the parts keep these weights.
        for module in named.values():
            module._is_init = True
        print_log(f'loaded {loaded} tensors from {where} into '
                  + ' and '.join(('backbone', 'roi_head.shared_head')[:len(parts)]),
                  logger='current')

    def __repr__(self) -> str:
        return f'ShuffleNetPretrained(checkpoint={self.checkpoint!r}, prefix={self.prefix!r})'
