"""An exported detector run by ONNX Runtime, with MMDetection's test pipeline around it.

The file's ``metadata_props`` record its format and, under ``shufflenet_det.config``,
what it was exported from (:func:`config_record`): the classes, the config's settings
that the graph bakes in, and the test pipeline. :class:`ONNXRuntimeDetector` refuses a
file that is not such a detector, and a config that disagrees with the record, naming
the first difference; then it runs the recorded pipeline (mmcv's ``Resize``, mmdet's
``PackDetInputs``) before the graph and divides the boxes by its scale factor after it,
so that its ``DetDataSample``\\ s hold what ``mmdet.apis.inference_detector`` returns.
"""
import ast
import os
from collections.abc import Mapping, Sequence
from typing import Optional, Union

import numpy as np
import torch
from mmengine.structures import InstanceData

from ..checkpoint import ZIP_MAGIC
from ..config import load_config
from ..errors import ConfigError, InputError, InputFileNotFoundError
from ..images import read_image

DETECTOR_FORMAT = 'faster_rcnn_detections/1'  # the value of META_FORMAT this version reads
META_FORMAT = 'shufflenet_det.format'
META_CONFIG = 'shufflenet_det.config'
EXPORTED_BY = 'tools/export_onnx.py CONFIG CHECKPOINT'
#: The settings the graph bakes in, with the value a config that leaves one out gets.
BAKED_IN = {
    'model.data_preprocessor.mean': None, 'model.data_preprocessor.std': None,
    'model.data_preprocessor.bgr_to_rgb': False, 'model.data_preprocessor.rgb_to_bgr': False,
    'model.data_preprocessor.pad_size_divisor': 1, 'model.data_preprocessor.pad_value': 0,
    'model.roi_head.bbox_head.num_classes': None,
    'model.test_cfg.rpn.nms_pre': -1, 'model.test_cfg.rpn.max_per_img': None,
    'model.test_cfg.rpn.min_bbox_size': -1, 'model.test_cfg.rpn.nms.iou_threshold': None,
    'model.test_cfg.rcnn.score_thr': None, 'model.test_cfg.rcnn.max_per_img': None,
    'model.test_cfg.rcnn.nms.iou_threshold': None}
_NOT_SET = '<not set>'


class DetectorFileError(InputError, ValueError):
    """A file given as an exported detector that is not one (or not readable as one)."""


class ImageArrayError(InputError, ValueError):
    """An in-memory image that is not an HxWx3 (or HxW) array of pixels."""


def onnxruntime_session(path: str, threads: Optional[int] = None, spinning: bool = True):
    """An ONNX Runtime CPU session for ``path`` (``threads`` intra-op threads if given);
    ``spinning=False`` keeps idle workers from spinning, which takes the cores from other
    sessions in the process (a benchmark)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def _plain(value):
    """``value`` with ConfigDicts as dicts and classes as their names: a Python literal."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value.__name__ if isinstance(value, type) else value


def _get(cfg, dotted: str, default=None):
    try:
        for key in dotted.split('.'):
            cfg = cfg[key]
    except (KeyError, TypeError, AttributeError):
        return default
    return cfg


def config_record(cfg) -> dict:
    """What ``cfg`` says about the model, as an export records it: ``classes`` (the test
    dataset's ``metainfo``, else its class's ``METAINFO``), the :data:`BAKED_IN` settings
    and ``test_pipeline``; None where the config has none."""
    from mmdet.registry import DATASETS
    dataset = _get(cfg, 'test_dataloader.dataset', {})
    classes = _get(dataset, 'metainfo.classes')
    if classes is None:
        dataset_type = _get(dataset, 'type')
        dataset_class = DATASETS.get(dataset_type) if isinstance(dataset_type, str) \
            else dataset_type
        classes = (getattr(dataset_class, 'METAINFO', None) or {}).get('classes')
    return _plain(dict(classes=classes, **{k: _get(cfg, k, d) for k, d in BAKED_IN.items()},
                       test_pipeline=_get(dataset, 'pipeline')))


def _flat(value, key: str) -> dict:
    """``value`` as ``{name: leaf}``: dicts key by key (but ``backend_args``: where the bytes
    come from does not change them), lists item by item unless all numbers."""
    if isinstance(value, Mapping):
        items = [(f'{key}.{k}', v) for k, v in value.items() if k != 'backend_args']
    elif isinstance(value, (list, tuple)) and not all(isinstance(v, (int, float)) for v in value):
        items = [(f'{key}[{i}]', v) for i, v in enumerate(value)]
    else:
        return {key: list(value) if isinstance(value, tuple) else value}
    return {name: leaf for item_key, item in items for name, leaf in _flat(item, item_key).items()}


def _show(value) -> str:
    if isinstance(value, float):
        return f'{value:.6g}'
    if isinstance(value, list):
        return '[' + ', '.join(map(_show, value)) + ']'
    return value if value is _NOT_SET else repr(value)


def check_config_agrees(path: str, record: dict, given: dict, name: str) -> None:
    """Raise unless ``given`` (a :func:`config_record`, or part of one) agrees with the file's
    ``record``; an entry that either leaves out (None) is not compared.

    Raises:
        ConfigError: naming the first difference, with the file's value and ``name``'s.
    """
    for entry, recorded in record.items():
        if recorded is None or given.get(entry) is None:
            continue
        a, b = _flat(recorded, entry), _flat(_plain(given[entry]), entry)
        for key in {**a, **b}:
            if a.get(key, _NOT_SET) != b.get(key, _NOT_SET):
                raise ConfigError(
                    f'{path} was exported with another config: {key} is '
                    f'{_show(a.get(key, _NOT_SET))} in the file, {_show(b.get(key, _NOT_SET))} '
                    f'in {name}; run it with the config it was exported from, or export it '
                    'again from this one')


def read_detector_metadata(path: Union[str, os.PathLike]) -> dict[str, str]:
    """The ``metadata_props`` of the exported detector at ``path``, as a dict.

    Raises:
        InputFileNotFoundError: ``path`` does not exist.
        DetectorFileError: ``path`` is a folder, empty, not an ONNX file (or truncated),
            or an ONNX model that this project did not export as a detector.
    """
    import onnx
    from google.protobuf.message import DecodeError
    path, expected = os.fspath(path), f'expected an .onnx file from {EXPORTED_BY}'
    if os.path.isdir(path):
        raise DetectorFileError(f'{path} is a folder; {expected}')
    if not os.path.isfile(path):
        raise InputFileNotFoundError(f'ONNX file not found: {path}')
    if os.path.getsize(path) == 0:
        raise DetectorFileError(f'{path} is empty (0 bytes); {expected}')
    try:
        proto = onnx.load(path, load_external_data=False)
    except DecodeError as exc:
        with open(path, 'rb') as f:
            zipped = f.read(len(ZIP_MAGIC)) == ZIP_MAGIC
        raise DetectorFileError(
            f'{path} is not an ONNX file, or is truncated (protobuf: {exc})'
            f'{"; it is a zip archive: a PyTorch checkpoint?" if zipped else ""}; '
            f'{expected}') from exc
    meta = {p.key: p.value for p in proto.metadata_props}
    recorded = meta.get(META_FORMAT)
    if recorded is None:
        if not proto.graph.node:
            what = 'it holds no ONNX graph (not an ONNX file, or truncated)'
        else:
            inputs = [i.name for i in proto.graph.input]
            guess = ': a backbone or classifier export?' if inputs[:1] == ['input'] else ''
            what = (f'it is an ONNX model with inputs {inputs} and outputs '
                    f'{[o.name for o in proto.graph.output]}{guess}')
        raise DetectorFileError(f'{path} is not a detector exported by {EXPORTED_BY} (no '
                                f'{META_FORMAT} in its metadata); {what}')
    if recorded != DETECTOR_FORMAT:
        raise DetectorFileError(f'{path} records {META_FORMAT} {recorded!r}; this version '
                                f'reads {DETECTOR_FORMAT!r}: export it again')
    return meta


def inference_pipeline(test_pipeline: Sequence[dict]):
    """The test pipeline for one in-memory image, as ``inference_detector`` builds it, in
    mmdet's registry scope whatever the caller's."""
    from mmcv.transforms import Compose
    from mmengine.registry import DefaultScope
    steps = [dict(step) for step in test_pipeline]
    if not steps or 'LoadImage' not in str(steps[0].get('type')):
        raise ConfigError(f'the test pipeline must start by loading the image, got {steps[:1]}')
    steps[0] = dict(type='mmdet.LoadImageFromNDArray')
    with DefaultScope.overwrite_default_scope('mmdet'):
        return Compose(steps)


def as_bgr_image(image) -> np.ndarray:
    """``image`` as an HxWx3 array; HxW and HxWx1 (grayscale) stacked to three equal
    channels, as mmcv reads a grayscale file in colour.

    Raises:
        ImageArrayError: not an array of numbers, another number of channels or
            dimensions, or no pixels.
    """
    expected = 'an image path or an HxWx3 BGR array (HxW grayscale is stacked to 3 channels)'
    if not isinstance(image, np.ndarray):
        raise ImageArrayError(f'expected {expected}, got {type(image).__name__}')
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise ImageArrayError(f'expected {expected} of numbers, got dtype {image.dtype}')
    if image.ndim == 3 and image.shape[2] == 4:
        raise ImageArrayError(f'expected {expected}, got shape {image.shape} (4 channels: drop '
                              'the alpha channel, image[..., :3])')
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise ImageArrayError(f'expected {expected}, got shape {image.shape}')
    if image.size == 0:
        raise ImageArrayError(f'expected {expected}, got an empty array of shape {image.shape}')
    if image.ndim == 2:
        image = image[:, :, None]
    return np.ascontiguousarray(np.repeat(image, 3, axis=2)) if image.shape[2] == 1 else image


class ONNXRuntimeDetector:
    """A detector exported by ``tools/export_onnx.py CONFIG CHECKPOINT``, in ONNX Runtime.

    Args:
        path (str | PathLike): The ``.onnx`` file.
        test_pipeline (Sequence[dict], optional): The test pipeline, for a file that
            records none; a file that records one refuses another.
        threads (int, optional): ONNX Runtime's intra-op threads (default: its own).
        config (str | Config, optional): The config the file is used with; refused unless
            it agrees with the file's record, and its test pipeline used when there is none.

    Attributes:
        classes (tuple[str] | None): Class names recorded at export.

    Raises:
        InputError: ``path`` is not a detector exported by ``tools/export_onnx.py``, or
            ``config``/``test_pipeline`` differ from what it records.
    """

    def __init__(self, path: Union[str, os.PathLike], test_pipeline: Optional[Sequence] = None,
                 threads: Optional[int] = None, config=None) -> None:
        from onnxruntime.capi.onnxruntime_pybind11_state import (Fail, InvalidArgument,
                                                                 InvalidGraph, InvalidProtobuf)
        path = os.fspath(path)
        try:
            record = ast.literal_eval(read_detector_metadata(path).get(META_CONFIG, '{}'))
        except (ValueError, SyntaxError) as exc:
            raise DetectorFileError(f'{path}: its recorded {META_CONFIG} cannot be read back '
                                    f'({type(exc).__name__}: {exc}); export it again') from exc
        if test_pipeline is not None:
            check_config_agrees(path, record, dict(test_pipeline=test_pipeline),
                                'the test pipeline given')
        if config is not None:
            cfg = load_config(os.fspath(config)) if isinstance(config, (str, os.PathLike)) \
                else config
            given = config_record(cfg)
            check_config_agrees(path, record, given, getattr(cfg, 'filename', None)
                                or 'the config')
            test_pipeline = test_pipeline or given['test_pipeline']
        test_pipeline = record.get('test_pipeline') or test_pipeline
        if test_pipeline is None:
            raise ConfigError(f'{path} records no test pipeline; pass the config\'s')
        classes = record.get('classes')
        self.path, self.classes = path, None if classes is None else tuple(classes)
        try:
            self.session = onnxruntime_session(path, threads)
        except (Fail, InvalidArgument, InvalidGraph, InvalidProtobuf) as exc:
            detail = ' '.join(str(exc).split())
            raise InputError(f'ONNX Runtime cannot load {path} ({detail}); expected an .onnx '
                             f'file from {EXPORTED_BY}') from exc
        self.pipeline = inference_pipeline(test_pipeline)
        self.input_name = self.session.get_inputs()[0].name

    def predict_packed(self, inputs: Sequence[torch.Tensor], data_samples: Sequence) -> list:
        """``model.test_step`` for a batch as the test dataloader gives it: each sample gets
        ``pred_instances`` in the original image's pixels."""
        results = []
        for image, sample in zip(inputs, data_samples):
            boxes, scores, labels = self.session.run(None, {
                self.input_name: image.detach().cpu().numpy().astype(np.float32)[None]})
            scale = np.tile(np.asarray(sample.metainfo['scale_factor'], np.float32), 2)
            instances = InstanceData()
            instances.bboxes = torch.from_numpy(boxes / scale)
            instances.scores = torch.from_numpy(scores)
            instances.labels = torch.from_numpy(labels.astype(np.int64))
            sample = sample.clone()
            sample.pred_instances = instances
            results.append(sample)
        return results

    def __call__(self, image: Union[str, os.PathLike, np.ndarray]):
        """Detect objects in one image, as ``inference_detector``.

        Args:
            image (str | PathLike | np.ndarray): An image file, or its pixels: HxWx3 BGR
                (as ``mmcv.imread`` gives them), or HxW grayscale.

        Raises:
            InputError: a missing or undecodable file, or an array that is not an image.
        """
        import cv2
        if isinstance(image, (str, os.PathLike)):
            image = read_image(os.fspath(image))
        image = as_bgr_image(image)
        try:
            data = self.pipeline(dict(img=image, img_id=0))
        except cv2.error as exc:  # e.g. Resize of a 1x4000 image to zero rows
            detail = ' '.join(str(exc).split())
            raise ImageArrayError(f'the test pipeline cannot process an image of shape '
                                  f'{image.shape}: {detail}') from exc
        return self.predict_packed([data['inputs']], [data['data_samples']])[0]
