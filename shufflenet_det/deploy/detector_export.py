"""A Faster R-CNN written to one checked ONNX file, and ``tools/export_onnx.py CONFIG CHECKPOINT``.

:func:`export_detector_onnx` traces :class:`~.detector_graph.FasterRCNNGraph`,
records :func:`~.detector_metadata.detector_metadata` in the file and checks it
(default ONNX domain only, the requested opset, ``onnx.checker``) before the file
appears under its name.

:func:`export_detector` is the tool: the fp32 file and, with ``int8``, its int8
version, which quantizes the convolutions and fully connected layers
(:mod:`shufflenet_det.deploy.quantize`), calibrated on images that go through the
config's test pipeline as at inference, and keeps in fp32 the layers whose outputs
are decoded into boxes and scores: the RPN's objectness and box-delta convolutions
and the box head's classifier and regressor. The rest of the graph (anchors,
decoding, NMS, RoiAlign, softmax) is fp32 by construction. Both files are written
under temporary names and appear together, once ONNX Runtime has run the fp32 graph
and the int8 file is complete; a destination that cannot be written is refused
before the model is loaded.
"""
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from ..checkpoint import load_detector
from ..images import read_image
from ..errors import ConfigError
from ..fileio import atomic_path, check_writable
from .detector_graph import FasterRCNNGraph
from .detector_metadata import INPUT_NAME, OUTPUT_NAMES, PROPOSAL_NAMES, detector_metadata
from .onnx_export import onnxruntime_session
from .onnx_runtime import ONNXRuntimeDetector
from .quantize import calibration_images, int8_path, quantize_int8
from .legacy_onnx_exporter import torch_onnx_export_legacy

MIN_OPSET = 16  # RoiAlign's coordinate_transformation_mode ('half_pixel' = mmcv aligned=True)
DEFAULT_DOMAINS = ('', 'ai.onnx')
#: Nodes whose outputs become box coordinates or scores: kept in fp32 (matched by name).
FP32_DETECTOR_LAYERS = ('rpn_cls', 'rpn_reg', 'fc_cls', 'fc_reg')


def check_graph(proto, opset: int) -> None:
    """Every node (subgraphs included) in the default domain; the checker passes."""
    import onnx

    def nodes(graph):
        for node in graph.node:
            yield node
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    yield from nodes(attr.g)
                for sub in attr.graphs:
                    yield from nodes(sub)

    foreign = sorted({f'{n.domain}::{n.op_type}' for n in nodes(proto.graph)
                      if n.domain not in DEFAULT_DOMAINS})
    if foreign:
        raise RuntimeError(f'the exported graph has operators outside the default ONNX domain: '
                           f'{foreign}')
    imports = {o.domain: o.version for o in proto.opset_import}
    if set(imports) - set(DEFAULT_DOMAINS):
        raise RuntimeError(f'the exported graph imports operator sets {sorted(imports)}')
    if imports.get('', imports.get('ai.onnx')) != opset:
        raise RuntimeError(f'the exported graph has opset {imports}, expected {opset}')
    onnx.checker.check_model(proto)


def export_detector_onnx(model: nn.Module, path: str, opset: int = 17,
                         example_hw: tuple[int, int] = (320, 416),
                         with_proposals: bool = False) -> dict:
    """Export a Faster R-CNN (C4 or FPN) to one ONNX file at ``path`` (written atomically).

    The graph is :class:`FasterRCNNGraph`'s: input ``image`` float32 ``[1, 3, H, W]``
    (H and W dynamic; the image after the test pipeline's Resize, BGR 0-255, not
    padded), outputs ``boxes`` ``[K, 4]``, ``scores`` ``[K]``, ``labels`` int64 ``[K]``
    (and ``proposals``, ``proposal_scores`` with ``with_proposals``). The file's
    ``metadata_props`` are :func:`~.detector_metadata.detector_metadata`'s.

    Args:
        model (nn.Module): An mmdet ``FasterRCNN``; it is put in eval mode. Export the
            plain model: the fast path's PyTorch-only rewrites (``deploy_detector``)
            are for eager inference.
        path (str): Output file.
        opset (int): ONNX opset, at least 16 (``RoiAlign``'s half-pixel mode). Default: 17.
        example_hw (tuple[int, int]): The tracing example's size (random pixels). Any
            size works, even one that gives no detections: no step branches on the data
            in Python (the tests trace a C4 model on a 1x1 image).
        with_proposals (bool): Also output the RPN proposals. Default: False.

    Returns:
        dict: ``path``, ``opset``, ``inputs``, ``outputs``, ``metadata``, ``num_nodes``,
        ``op_types`` (node count per operator) and ``export_s``.

    Raises:
        ValueError: for a model the graph does not implement, or opset < 16.
        RuntimeError: when the written graph has non-default-domain operators or fails
            ``onnx.checker``.
    """
    import onnx

    if opset < MIN_OPSET:
        raise ConfigError(f'opset must be at least {MIN_OPSET} (RoiAlign half_pixel), got {opset}')
    graph = FasterRCNNGraph(model.eval(), with_proposals=with_proposals).eval()
    example = torch.rand(1, 3, *example_hw) * 255
    outputs = list(OUTPUT_NAMES) + (list(PROPOSAL_NAMES) if with_proposals else [])
    axes = {INPUT_NAME: {2: 'height', 3: 'width'},
            **{name: {0: 'num_detections'} for name in OUTPUT_NAMES},
            **{name: {0: 'num_proposals'} for name in outputs[3:]}}
    metadata = detector_metadata(model, graph, outputs)

    start = time.perf_counter()
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        torch_onnx_export_legacy(graph, (example, ), tmp, input_names=[INPUT_NAME],
                                output_names=outputs, dynamic_axes=axes, opset_version=opset,
                                do_constant_folding=True)
        proto = onnx.load(tmp)
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        check_graph(proto, opset)
        onnx.save(proto, tmp)
    export_s = time.perf_counter() - start
    op_types = dict(Counter(node.op_type for node in proto.graph.node))
    return dict(path=str(path), opset=opset, inputs=[INPUT_NAME], outputs=outputs,
                metadata=metadata, num_nodes=len(proto.graph.node), op_types=op_types,
                export_s=export_s)


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


def check_runs_in_onnxruntime(path: str) -> None:
    """Run the exported graph once in ONNX Runtime (a 64x64 image): it loads and runs."""
    session = onnxruntime_session(path, threads=1)
    session.run(None, {INPUT_NAME: np.zeros((1, 3, 64, 64), np.float32)})


def export_detector(config: str, checkpoint: str, out: str, opset: int = 17,
                    int8: bool = False, calib_dir: Optional[str] = None, calib_num: int = 100,
                    progress: Callable[[str], None] = print) -> dict:
    """Export ``checkpoint`` (loaded strictly into ``config``'s detector) to ``out``.

    With ``int8``, also write ``int8_path(out)``, calibrated on the first ``calib_num``
    images of ``calib_dir`` (sorted by name). The files appear only when all are
    written and checked: a failure leaves neither (nor a temporary file).

    Returns:
        dict: the export's summary (``path``, ``num_nodes``, ``op_types``, ...) and, with
        ``int8``, ``int8_path`` and ``fp32_nodes`` (the layers left in fp32).

    Raises:
        InputError: an output that cannot be written, a missing or broken config,
            checkpoint or calibration folder, a detector the graph does not implement,
            or too few calibration images.
    """
    check_writable(out, '--out')
    if int8:
        check_writable(int8_path(out), '--int8 output')
    images = calibration_images(calib_dir, calib_num) if int8 else []
    model = load_detector(config, checkpoint)
    with ExitStack() as outputs:
        fp32_tmp = outputs.enter_context(atomic_path(out))
        info = dict(export_detector_onnx(model, fp32_tmp, opset=opset), path=str(out))
        check_runs_in_onnxruntime(fp32_tmp)
        if int8:
            keep = fp32_nodes_of(fp32_tmp)
            quantize_int8(fp32_tmp, int8_path(out),
                          detector_calibration_inputs(fp32_tmp, images), len(images),
                          nodes_to_exclude=keep, progress=progress)
            info.update(int8_path=int8_path(out), fp32_nodes=keep)
    progress(f'wrote {out}: {info["num_nodes"]} nodes, opset {opset}, default ONNX domain only, '
             f'{info["metadata"]["shufflenet_det.layout"]} layout; ONNX Runtime runs it')
    return info
