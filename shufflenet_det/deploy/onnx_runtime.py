"""An exported detector run by ONNX Runtime, with MMDetection's test pipeline around it.

The graph (``shufflenet_det.deploy.detector_graph``) takes the image as the config's
test pipeline leaves it after ``Resize`` and returns boxes in that image's pixels.
:class:`ONNXRuntimeDetector` runs the same pipeline before the graph (mmcv's
``Resize`` and mmdet's ``PackDetInputs``, built from the config recorded in the file)
and divides the boxes by the pipeline's scale factor after it, so that its
``DetDataSample``\\ s hold what ``mmdet.apis.inference_detector`` returns for the
PyTorch model.

Given a config as well (``tools/test.py CONFIG det.onnx``, ``tools/demo.py``), the
detector first checks that the config describes the exported model
(:func:`~.config_agreement.check_config_agrees`).
"""
import os
from collections.abc import Sequence
from typing import Optional, Union

import numpy as np
import torch
from mmengine.structures import InstanceData

from ..config import load_config
from ..images import read_image
from ..errors import ConfigError, InputError
from .config_agreement import (check_config_agrees, check_pipeline_agrees,
                               config_test_pipeline)
from .detector_metadata import (EXPORTED_BY, read_detector_metadata, recorded_classes,
                                recorded_test_pipeline)
from .onnx_export import onnxruntime_session


class ImageArrayError(InputError, ValueError):
    """An in-memory image that is not an HxWx3 (or HxW) array of pixels."""


def inference_pipeline(test_pipeline: Sequence[dict]):
    """The test pipeline for one in-memory image, as ``inference_detector`` builds it.

    The transforms are looked up in mmdet's registry scope whatever the caller's scope,
    so that the runtime works in a plain script.
    """
    from mmcv.transforms import Compose
    from mmengine.registry import DefaultScope
    steps = [dict(step) for step in test_pipeline]
    if not steps or 'LoadImage' not in str(steps[0].get('type')):
        raise ConfigError(f'the test pipeline must start by loading the image, got {steps[:1]}')
    steps[0] = dict(type='mmdet.LoadImageFromNDArray')
    with DefaultScope.overwrite_default_scope('mmdet'):
        return Compose(steps)


def as_bgr_image(image) -> np.ndarray:
    """``image`` as an HxWx3 array: HxWx3 as it is, HxW and HxWx1 (grayscale) stacked to
    three equal channels, as mmcv reads a grayscale file in colour.

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


def _session(path: str, threads: Optional[int]):
    """The ONNX Runtime session, a graph it refuses being a bad file, not a bug."""
    from onnxruntime.capi.onnxruntime_pybind11_state import (Fail, InvalidArgument, InvalidGraph,
                                                             InvalidProtobuf)
    try:
        return onnxruntime_session(path, threads)
    except (Fail, InvalidArgument, InvalidGraph, InvalidProtobuf) as exc:
        detail = ' '.join(str(exc).split())
        raise InputError(f'ONNX Runtime cannot load {path} ({detail}); expected an .onnx file '
                         f'from {EXPORTED_BY}') from exc


class ONNXRuntimeDetector:
    """A detector exported by ``tools/export_onnx.py CONFIG CHECKPOINT``, in ONNX Runtime.

    Args:
        path (str | PathLike): The ``.onnx`` file.
        test_pipeline (Sequence[dict], optional): The test pipeline, for a file that
            records none (a model exported without its config); a file that records one
            refuses another.
        threads (int, optional): ONNX Runtime's intra-op threads (default: its own).
        config (str | Config, optional): The config the file is used with; refused
            unless it describes the exported model (classes, input convention, test
            settings and pipeline), and its test pipeline used when the file records none.

    Attributes:
        classes (tuple[str] | None): Class names recorded at export.

    Raises:
        InputError: ``path`` is not a detector exported by ``tools/export_onnx.py``, or
            ``config``/``test_pipeline`` differ from what it records (the message names
            the first difference).
    """

    def __init__(self, path: Union[str, os.PathLike], test_pipeline: Optional[Sequence] = None,
                 threads: Optional[int] = None, config=None) -> None:
        path = os.fspath(path)
        meta = read_detector_metadata(path)
        recorded = recorded_test_pipeline(path, meta)
        check_pipeline_agrees(path, recorded, test_pipeline)
        if config is not None:
            cfg = load_config(os.fspath(config)) if isinstance(config, (str, os.PathLike)) \
                else config
            check_config_agrees(path, meta, cfg)
            test_pipeline = test_pipeline or config_test_pipeline(cfg)
        if recorded is None and test_pipeline is None:
            raise ConfigError(f'{path} records no test pipeline; pass the config\'s')
        self.path = path
        self.classes = recorded_classes(meta)
        self.session = _session(path, threads)
        self.pipeline = inference_pipeline(recorded or test_pipeline)
        self.input_name = self.session.get_inputs()[0].name

    def run_packed(self, inputs: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (in the resized image's pixels), scores and labels for one packed image."""
        image = inputs.detach().cpu().numpy().astype(np.float32)[None]
        boxes, scores, labels = self.session.run(None, {self.input_name: image})
        return boxes, scores, labels

    def predict_packed(self, inputs: Sequence[torch.Tensor], data_samples: Sequence) -> list:
        """``model.test_step`` for a batch as the test dataloader gives it.

        Each sample gets ``pred_instances`` in the original image's pixels.
        """
        results = []
        for image, sample in zip(inputs, data_samples):
            boxes, scores, labels = self.run_packed(image)
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
