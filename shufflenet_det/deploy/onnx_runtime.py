"""An exported detector run by ONNX Runtime, with MMDetection's test pipeline around it.

The graph (``shufflenet_det.deploy.detector_onnx``) takes the image as the config's
test pipeline leaves it after ``Resize`` and returns boxes in that image's pixels.
:class:`ONNXRuntimeDetector` runs the same pipeline before the graph (mmcv's
``Resize`` and mmdet's ``PackDetInputs``, built from the config recorded in the file)
and divides the boxes by the pipeline's scale factor after it, so that its
``DetDataSample``\\ s hold what ``mmdet.apis.inference_detector`` returns for the
PyTorch model.
"""
import ast
import json
from collections.abc import Sequence
from typing import Optional, Union

import numpy as np
import torch
from mmengine.structures import InstanceData

from ..datasets.coco import read_image
from ..errors import ConfigError
from .detector_onnx import META_CLASSES, META_TEST_PIPELINE
from .onnx_export import onnxruntime_session



def read_metadata(path: str) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file, as a dict."""
    import onnx
    model = onnx.load(path, load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


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


class ONNXRuntimeDetector:
    """A detector exported by ``tools/export_onnx.py CONFIG CHECKPOINT``, in ONNX Runtime.

    Args:
        path (str): The ``.onnx`` file.
        test_pipeline (Sequence[dict], optional): The config's test pipeline; default:
            the one recorded in the file at export.
        threads (int, optional): ONNX Runtime's intra-op threads (default: its own).

    Attributes:
        classes (tuple[str] | None): Class names recorded at export.
    """

    def __init__(self, path: str, test_pipeline: Optional[Sequence[dict]] = None,
                 threads: Optional[int] = None) -> None:
        meta = read_metadata(path)
        if test_pipeline is None:
            if META_TEST_PIPELINE not in meta:
                raise ConfigError(f'{path} records no test pipeline; pass the config\'s')
            test_pipeline = ast.literal_eval(meta[META_TEST_PIPELINE])
        self.path = path
        self.classes = tuple(json.loads(meta[META_CLASSES])) if META_CLASSES in meta else None
        self.session = onnxruntime_session(path, threads)
        self.pipeline = inference_pipeline(test_pipeline)
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

    def __call__(self, image: Union[str, np.ndarray]):
        """Detect objects in one image (a path or a BGR array), as ``inference_detector``."""
        if isinstance(image, str):
            image = read_image(image)
        data = self.pipeline(dict(img=image, img_id=0))
        return self.predict_packed([data['inputs']], [data['data_samples']])[0]
