"""An exported detector and the config it is run with must describe the same model.

``tools/test.py CONFIG det.onnx`` takes its data, its test pipeline and its class
names from CONFIG, and the graph bakes in its own. With another config the run
would still finish, with wrong numbers (a swapped class list, another resize, a
score threshold the graph ignores). :func:`check_config_agrees` compares what the
file records with the config, in this order, and names the first difference with
both values:

- ``classes``: the test dataset's class names;
- the input convention: ``model.data_preprocessor`` ``mean``, ``std``, ``bgr_to_rgb``
  (or ``rgb_to_bgr``), ``pad_size_divisor``, ``pad_value``;
- the number of classes and the test settings baked into the graph:
  ``model.roi_head.bbox_head.num_classes``, ``model.test_cfg.rpn`` (``nms_pre``,
  ``max_per_img``, ``min_bbox_size``, ``nms.iou_threshold``) and ``model.test_cfg.rcnn``
  (``score_thr``, ``max_per_img``, ``nms.iou_threshold``);
- ``test_pipeline``: step by step and key by key (``backend_args`` left out: where the
  bytes come from does not change them).

A setting that the file or the config does not record is not compared.
"""
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Optional

from ..errors import ConfigError
from .detector_metadata import META_SETTINGS, recorded_classes, recorded_test_pipeline

_NOT_SET = '<not set>'
#: Pipeline keys that do not change what the transforms compute.
IGNORED_PIPELINE_KEYS = ('backend_args', )


def _plain(value: Any) -> Any:
    """``value`` with ConfigDicts as dicts, tuples as lists and classes as their names."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, type):
        return value.__name__
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _show(value: Any) -> str:
    """``value`` as the user would write it, floats to 6 significant digits."""
    if isinstance(value, float):
        return f'{value:.6g}'
    if value is _NOT_SET:
        return value
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(_show(v) for v in value) + ']'
    if isinstance(value, dict):
        return '{' + ', '.join(f'{k!r}: {_show(v)}' for k, v in value.items()) + '}'
    return repr(value)


def first_difference(field: str, recorded: Any, configured: Any) -> Optional[tuple]:
    """The first ``(field, recorded, configured)`` where the two differ, or None.

    Dicts are compared key by key (``type`` first) and lists of dicts item by item;
    other values as a whole.
    """
    if isinstance(recorded, dict) and isinstance(configured, dict):
        keys = sorted(set(recorded) | set(configured), key=lambda k: (k != 'type', str(k)))
        for key in keys:
            found = first_difference(f'{field}.{key}', recorded.get(key, _NOT_SET),
                                     configured.get(key, _NOT_SET))
            if found:
                return found
        return None
    if isinstance(recorded, (list, tuple)) and isinstance(configured, (list, tuple)) \
            and any(isinstance(v, dict) for v in [*recorded, *configured]):
        for i, (a, b) in enumerate(zip(recorded, configured)):
            found = first_difference(f'{field}[{i}]', a, b)
            if found:
                return found
        if len(recorded) != len(configured):
            return f'len({field})', len(recorded), len(configured)
        return None
    return None if _same(recorded, configured) else (field, recorded, configured)


def _classes_difference(recorded: Sequence, configured: Sequence) -> Optional[tuple]:
    """The first differing class name (not the whole lists: COCO has 80)."""
    for i, (a, b) in enumerate(zip(recorded, configured)):
        if a != b:
            return f'classes[{i}]', a, b
    if len(recorded) != len(configured):
        return 'the number of classes', len(recorded), len(configured)
    return None


def config_classes(cfg) -> Optional[list]:
    """The test dataset's class names: its ``metainfo``, else its class's ``METAINFO``."""
    from mmdet.registry import DATASETS
    dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    classes = (dataset.get('metainfo') or {}).get('classes')
    if classes is None:
        dataset_type = dataset.get('type')
        dataset_class = DATASETS.get(dataset_type) if isinstance(dataset_type, str) \
            else dataset_type
        classes = (getattr(dataset_class, 'METAINFO', None) or {}).get('classes')
    return None if classes is None else list(classes)


def config_test_pipeline(cfg) -> Optional[list]:
    """The test dataset's pipeline (``test_dataloader.dataset.pipeline``), or None."""
    dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    return dataset.get('pipeline')


def _preprocessor_fields(settings: dict, cfg) -> Iterator[tuple]:
    recorded = settings.get('preprocess')
    pre = (cfg.get('model') or {}).get('data_preprocessor')
    if not recorded or pre is None:
        return
    normalize = recorded['normalize']
    yield ('mean', recorded['mean'] if normalize else None, pre.get('mean'))
    yield ('std', recorded['std'] if normalize else None, pre.get('std'))
    yield ('bgr_to_rgb', recorded['bgr_to_rgb'],
           bool(pre.get('bgr_to_rgb', False) or pre.get('rgb_to_bgr', False)))
    yield ('pad_size_divisor', recorded['pad_size_divisor'], pre.get('pad_size_divisor', 1))
    yield ('pad_value', recorded['pad_value'], pre.get('pad_value', 0))


def _test_cfg_fields(settings: dict, cfg) -> Iterator[tuple]:
    model = cfg.get('model') or {}
    bbox_head = (model.get('roi_head') or {}).get('bbox_head') or {}
    if 'rcnn' in settings and isinstance(bbox_head, Mapping) and 'num_classes' in bbox_head:
        yield ('roi_head.bbox_head.num_classes', settings['rcnn']['num_classes'],
               bbox_head['num_classes'])
    test_cfg = model.get('test_cfg') or {}
    defaults = dict(nms_pre=-1, min_bbox_size=-1)
    for stage, keys in (('rpn', ('nms_pre', 'max_per_img', 'min_bbox_size')),
                        ('rcnn', ('score_thr', 'max_per_img'))):
        recorded, configured = settings.get(stage), test_cfg.get(stage)
        if not recorded or not configured:
            continue
        for key in keys:
            yield (f'test_cfg.{stage}.{key}', recorded[key],
                   configured.get(key, defaults.get(key, _NOT_SET)))
        yield (f'test_cfg.{stage}.nms.iou_threshold', recorded['nms']['iou_threshold'],
               (configured.get('nms') or {}).get('iou_threshold', _NOT_SET))


def _model_fields(meta: dict, cfg) -> Iterator[tuple]:
    """``(field, recorded, configured)`` of the input convention and the graph's settings."""
    settings = json.loads(meta.get(META_SETTINGS, '{}'))
    for key, recorded, configured in _preprocessor_fields(settings, cfg):
        yield f'model.data_preprocessor.{key}', recorded, configured
    for key, recorded, configured in _test_cfg_fields(settings, cfg):
        yield f'model.{key}', recorded, configured


def _without_ignored_keys(pipeline: Sequence) -> list:
    return [{k: v for k, v in step.items() if k not in IGNORED_PIPELINE_KEYS}
            for step in _plain(pipeline)]


def pipeline_difference(recorded: Sequence, configured: Sequence) -> Optional[tuple]:
    """The first ``(field, recorded, configured)`` where two test pipelines differ, or None."""
    return first_difference('test_pipeline', _without_ignored_keys(recorded),
                            _without_ignored_keys(configured))


def config_difference(path: str, meta: dict, cfg) -> Optional[tuple]:
    """The first ``(field, recorded, configured)`` where ``cfg`` differs from ``path``'s
    metadata, or None."""
    recorded, configured = recorded_classes(meta), config_classes(cfg)
    if recorded is not None and configured is not None:
        found = _classes_difference(recorded, configured)
        if found:
            return found
    for field, recorded, configured in _model_fields(meta, cfg):
        found = first_difference(field, _plain(recorded), _plain(configured))
        if found:
            return found
    recorded, configured = recorded_test_pipeline(path, meta), config_test_pipeline(cfg)
    if recorded is not None and configured is not None:
        return pipeline_difference(recorded, configured)
    return None


def _raise_difference(path: str, found: tuple, name: str) -> None:
    field, recorded, configured = found
    raise ConfigError(f'{path} was exported with another config: {field} is {_show(recorded)} '
                      f'in the file, {_show(configured)} in {name}; run it with the config it '
                      'was exported from, or export it again from this one')


def check_config_agrees(path: str, meta: dict, cfg) -> None:
    """Raise unless ``cfg`` describes the detector exported to ``path`` (see the module).

    Raises:
        ConfigError: naming the first differing field, with the file's and the config's
            values.
    """
    found = config_difference(path, meta, cfg)
    if found:
        _raise_difference(path, found, getattr(cfg, 'filename', None) or 'the config')


def check_pipeline_agrees(path: str, recorded: Optional[Sequence],
                          given: Optional[Sequence]) -> None:
    """Raise unless the test pipeline ``given`` for ``path`` is the one it records (if any).

    Raises:
        ConfigError: naming the first differing step and key, with both values.
    """
    found = pipeline_difference(recorded, given) if recorded and given else None
    if found:
        _raise_difference(path, found, 'the test pipeline given')
