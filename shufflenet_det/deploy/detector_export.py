"""``tools/export_onnx.py CONFIG CHECKPOINT``: a trained detector as one ONNX file, and int8.

The fp32 graph is :func:`~shufflenet_det.deploy.detector_onnx.export_detector_onnx`'s.
The int8 file quantizes its convolutions and fully connected layers
(:mod:`shufflenet_det.deploy.quantize`), calibrated on images that go through the
config's test pipeline as at inference, and keeps in fp32 the layers whose outputs are
decoded into boxes and scores: the RPN's objectness and box-delta convolutions and the
box head's classifier and regressor. The rest of the graph (anchors, decoding, NMS,
RoiAlign, softmax) is fp32 by construction.
"""
from collections.abc import Iterator
from typing import Callable, Optional

import numpy as np

from ..checkpoint import load_detector
from ..datasets import read_image
from .detector_onnx import export_detector_onnx
from .onnx_runtime import ONNXRuntimeDetector
from .quantize import calibration_images, int8_path, quantize_int8

#: Nodes whose outputs become box coordinates or scores: kept in fp32 (matched by name).
FP32_DETECTOR_LAYERS = ('rpn_cls', 'rpn_reg', 'fc_cls', 'fc_reg')


def detector_calibration_inputs(fp32_path: str, images: list[str]) -> Iterator[np.ndarray]:
    """Each image as the graph's input: the recorded test pipeline, then float32 [1,3,H,W]."""
    pipeline = ONNXRuntimeDetector(fp32_path).pipeline
    for path in images:
        packed = pipeline(dict(img=read_image(path), img_id=0))['inputs']
        yield packed.numpy().astype(np.float32)[None]


def fp32_nodes_of(onnx_path: str, patterns=FP32_DETECTOR_LAYERS) -> list[str]:
    """The Conv/Gemm/MatMul nodes of ``onnx_path`` whose names contain one of ``patterns``."""
    import onnx
    graph = onnx.load(onnx_path, load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type in ('Conv', 'Gemm', 'MatMul')
            and any(p in n.name for p in patterns)]


def export_detector(config: str, checkpoint: str, out: str, opset: int = 17,
                    int8: bool = False, calib_dir: Optional[str] = None, calib_num: int = 100,
                    progress: Callable[[str], None] = print) -> dict:
    """Export ``checkpoint`` (loaded strictly into ``config``'s detector) to ``out``.

    With ``int8``, also write ``int8_path(out)``, calibrated on the first ``calib_num``
    images of ``calib_dir`` (sorted by name).

    Returns:
        dict: the export's summary (``path``, ``num_nodes``, ``op_types``, ...) and, with
        ``int8``, ``int8_path`` and ``fp32_nodes`` (the layers left in fp32).

    Raises:
        InputError: a missing or broken config, checkpoint or calibration folder, a
            detector the graph does not implement, or too few calibration images.
    """
    images = calibration_images(calib_dir, calib_num) if int8 else []
    model = load_detector(config, checkpoint)
    info = export_detector_onnx(model, out, opset=opset)
    progress(f'wrote {out}: {info["num_nodes"]} nodes, opset {opset}, default ONNX domain only, '
             f'{info["metadata"]["shufflenet_det.layout"]} layout')
    if int8:
        keep = fp32_nodes_of(out)
        quantize_int8(out, int8_path(out), detector_calibration_inputs(out, images), len(images),
                      nodes_to_exclude=keep, progress=progress)
        info.update(int8_path=int8_path(out), fp32_nodes=keep)
    return info
