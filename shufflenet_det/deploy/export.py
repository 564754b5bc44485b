"""``tools/export_onnx.py``: the backbone, the classifier or the whole detector to ONNX, and int8.

Every file is written under a temporary name and appears once all are complete and
checked; a destination that cannot be written is refused before the model is loaded.
"""
import inspect
import json
import os
import os.path as osp
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from typing import Optional

import numpy as np
import torch
from torch import nn

from ..checkpoint import (BACKBONE_PREFIX, check_shuffle_order, load_detector,
                          load_model_checkpoint, load_strict, read_checkpoint, select_prefix)
from ..errors import CheckFailedError, ConfigError, InputFileNotFoundError
from ..fileio import atomic_path, check_writable
from ..images import IMAGE_EXTENSIONS, read_image
from ..models import ShuffleNetClassifier, ShuffleNetV1
from .graph import FasterRCNNGraph
from .runtime import (DETECTOR_FORMAT, META_CONFIG, META_FORMAT, ONNXRuntimeDetector,
                      config_record, onnxruntime_session)

MIN_OPSET = 16  # RoiAlign's coordinate_transformation_mode ('half_pixel' = mmcv aligned=True)
DEFAULT_DOMAINS = ('', 'ai.onnx')
INPUT_NAME = 'image'
OUTPUT_NAMES = ('boxes', 'scores', 'labels')
#: Nodes whose outputs become box coordinates or scores: kept in fp32 (matched by name).
FP32_DETECTOR_LAYERS = ('rpn_cls', 'rpn_reg', 'fc_cls', 'fc_reg')
#: Operators quantized: the convolutions and fully connected layers, where the multiply-adds are.
QUANTIZED_OPS = ('Conv', 'MatMul', 'Gemm')


def torch_onnx_export_legacy(model, args, f, **kwargs) -> None:
    """``torch.onnx.export`` by the TorchScript exporter, which the graphs' custom symbolics
    need: asked for with ``dynamo=False`` where that exists (torch >= 2.5; the default from
    2.9), the only one before (torch 2.1, the classic MMDetection stack)."""
    if 'dynamo' in inspect.signature(torch.onnx.export).parameters:
        kwargs['dynamo'] = False
    torch.onnx.export(model, args, f, **kwargs)


# -- backbone and classifier --------------------------------------------------------------
class _Outputs(nn.Module):
    """``model`` with its outputs as a flat tuple of tensors, as ONNX sees them."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model(x)
        return tuple(out) if isinstance(out, (tuple, list)) else (out, )


def export_onnx(model: nn.Module, path: str, input_shape: tuple[int, int, int, int],
                opset: int = 17) -> list[str]:
    """Export ``model`` (eval mode; input ``input``, batch axis dynamic) to ``path``, written
    atomically; returns the output names."""
    model = _Outputs(model).eval()
    example = torch.randn(*input_shape)
    with torch.no_grad():
        names = [f'output{i}' for i in range(len(model(example)))]
    with atomic_path(path) as tmp:
        torch_onnx_export_legacy(model, (example, ), tmp, input_names=['input'],
                                 output_names=names, opset_version=opset,
                                 dynamic_axes={name: {0: 'batch'} for name in ['input', *names]})
    return names


def max_abs_diff(model: nn.Module, path: str, x: torch.Tensor) -> float:
    """Largest absolute difference between PyTorch and ONNX Runtime outputs on ``x``."""
    with torch.no_grad():
        expected = _Outputs(model).eval()(x)
    got = onnxruntime_session(path).run(None, {'input': x.numpy()})
    return max(float(np.abs(e.numpy() - g).max()) for e, g in zip(expected, got))


def build_for_export(checkpoint: Optional[str] = None, groups: Optional[int] = None,
                     widen_factor: Optional[float] = None, classifier: bool = False,
                     num_classes: int = 1000) -> nn.Module:
    """The backbone (Stage 2-4 maps) or classifier to export, loaded strictly from
    ``checkpoint`` if given (else the official random initialisation).

    The checkpoint's recorded ``meta['arch']`` decides ``groups``, ``widen_factor`` and
    ``shuffle_order``; a conflicting ``groups`` or ``widen_factor`` is an error naming both.
    """
    state, meta = read_checkpoint(checkpoint) if checkpoint else ({}, {})
    recorded = meta.get('arch') or {}
    for name, given in (('groups', groups), ('widen_factor', widen_factor)):
        if given is not None and name in recorded and recorded[name] != given:
            raise ConfigError(f'{checkpoint} holds ShuffleNetV1 weights with {name}='
                              f'{recorded[name]} (its meta[\'arch\']), but {name}={given} was '
                              'requested; leave the option out to use the recorded one')
    arch = dict(groups=groups or recorded.get('groups', 3),
                widen_factor=widen_factor or recorded.get('widen_factor', 1.0),
                shuffle_order=recorded.get('shuffle_order', 'paper'))
    if classifier:
        model = ShuffleNetClassifier(backbone=dict(type=ShuffleNetV1, out_indices=(2, ), **arch),
                                     num_classes=num_classes,
                                     data_preprocessor=dict(type='BaseDataPreprocessor'))
    else:
        model = ShuffleNetV1(out_indices=(0, 1, 2), **arch)
    if not checkpoint:
        model.init_weights()
    elif classifier:
        load_model_checkpoint(model, dict(state_dict=state, meta=meta), checkpoint)
    else:
        check_shuffle_order(meta, {'the backbone': model}, checkpoint)
        load_strict(model, select_prefix(state, BACKBONE_PREFIX, checkpoint), checkpoint)
    return model.eval()


def export_shufflenet_onnx(out: str, checkpoint: Optional[str] = None,
                           groups: Optional[int] = None, widen_factor: Optional[float] = None,
                           classifier: bool = False, num_classes: int = 1000,
                           shape: tuple[int, ...] = (1, 3, 224, 224), opset: int = 17,
                           tolerance: float = 1e-4, int8: bool = False,
                           calib_dir: Optional[str] = None, calib_num: int = 100,
                           progress: Callable[[str], None] = print) -> float:
    """``tools/export_onnx.py`` for the backbone or the classifier; with ``int8`` also
    ``*_int8.onnx``, calibrated on the first ``calib_num`` images of ``calib_dir`` resized
    to ``shape``.

    Returns:
        float: The largest difference between ONNX Runtime and PyTorch (fp32 file).

    Raises:
        InputError: an output that cannot be written, a bad ``shape`` or ``tolerance``,
            a missing or mismatched checkpoint, too few calibration images.
        CheckFailedError: the difference exceeds ``tolerance`` (nothing is written).
    """
    import mmcv
    check_writable(out, '--out')
    if int8:
        check_writable(int8_path(out), '--int8 output')
    if len(shape) != 4 or shape[1] != 3 or min(shape) < 1:
        raise ConfigError(f'--shape must be N 3 H W with N, H, W >= 1 (a batch of BGR '
                          f'images), got {" ".join(map(str, shape))}')
    if not tolerance >= 0:
        raise ConfigError(f'--tolerance must be >= 0, got {tolerance}')
    images = calibration_images(calib_dir, calib_num) if int8 else []
    model = build_for_export(checkpoint, groups, widen_factor, classifier, num_classes)
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0)) * 255
    with atomic_path(out) as tmp:
        export_onnx(model, tmp, tuple(shape), opset)
        diff = max_abs_diff(model, tmp, x)
        if not diff <= tolerance:
            raise CheckFailedError(f'ONNX Runtime differs from PyTorch by {diff:.3g}, above the '
                                   f'tolerance {tolerance}; {out} was not written')
        if int8:  # BGR, 0-255, float32 [1, 3, H, W]
            inputs = (mmcv.imresize(read_image(p), (shape[3], shape[2])).transpose(2, 0, 1)[None]
                      .astype(np.float32) for p in images)
            quantize_int8(tmp, int8_path(out), inputs, len(images), progress=progress)
    progress(f'wrote {out}; ONNX Runtime vs PyTorch max abs diff {diff:.2e}')
    return diff


# -- int8 -----------------------------------------------------------------------------------
def int8_path(path: str) -> str:
    """Where the int8 version of ``path`` goes: ``det.onnx`` -> ``det_int8.onnx``."""
    root, ext = osp.splitext(path)
    return f'{root}_int8{ext or ".onnx"}'


def calibration_images(calib_dir: str, num: int) -> list[str]:
    """The first ``num`` images of ``calib_dir`` (sorted by path, searched recursively).

    Raises:
        InputFileNotFoundError: ``calib_dir`` does not exist.
        ConfigError: ``num`` is not positive, or the folder holds fewer images.
    """
    if num < 1:
        raise ConfigError(f'--calib-num must be positive, got {num}')
    if not osp.isdir(calib_dir):
        raise InputFileNotFoundError(f'calibration folder not found: {calib_dir}')
    found = sorted(osp.join(root, name) for root, _, names in os.walk(calib_dir)
                   for name in names if name.lower().endswith(IMAGE_EXTENSIONS))
    if len(found) < num:
        raise ConfigError(f'{calib_dir} holds {len(found)} images ({", ".join(IMAGE_EXTENSIONS)}),'
                          f' fewer than the {num} asked for calibration')
    return found[:num]


def quantize_int8(fp32_path: str, int8_path: str, inputs: Iterable[np.ndarray], total: int,
                  nodes_to_exclude: Sequence[str] = (),
                  progress: Optional[Callable[[str], None]] = print) -> None:
    """Write the int8 version of ``fp32_path`` to ``int8_path`` (atomically): ONNX Runtime's
    static QDQ quantization of :data:`QUANTIZED_OPS` but ``nodes_to_exclude``, calibrated on
    ``inputs`` (``total`` arrays for the first input); ``progress`` None for silence."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    progress = progress or (lambda message: None)
    input_name = onnx.load(fp32_path, load_external_data=False).graph.input[0].name

    class Feed(CalibrationDataReader):
        def __init__(self):
            self.arrays, self.done = iter(inputs), 0

        def get_next(self) -> Optional[dict]:
            array = next(self.arrays, None)
            if array is None:
                return None
            self.done += 1
            if self.done % 25 == 0 or self.done == total:
                progress(f'calibration: {self.done}/{total} images')
            return {input_name: np.ascontiguousarray(array, dtype=np.float32)}

    with tempfile.TemporaryDirectory() as tmp:
        prepared = osp.join(tmp, 'prepared.onnx')
        quant_pre_process(fp32_path, prepared, skip_symbolic_shape=True)
        with atomic_path(int8_path) as partial:
            quantize_static(prepared, partial, Feed(), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, op_types_to_quantize=list(QUANTIZED_OPS),
                            nodes_to_exclude=list(nodes_to_exclude))
    progress(f'wrote {int8_path} (int8, {total} calibration images; '
             f'{len(nodes_to_exclude)} quantizable nodes kept in fp32)')


def fp32_nodes_of(onnx_path: str, patterns=FP32_DETECTOR_LAYERS) -> list[str]:
    """The Conv/Gemm/MatMul nodes of ``onnx_path`` whose names contain one of ``patterns``."""
    import onnx
    graph = onnx.load(onnx_path, load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type in QUANTIZED_OPS
            and any(p in n.name for p in patterns)]


# -- the detector ---------------------------------------------------------------------------
def detector_metadata(model: nn.Module, graph: FasterRCNNGraph, outputs: list) -> dict:
    """The ``metadata_props`` of an exported detector: its format and conventions, and under
    ``META_CONFIG`` the model's classes with its config's :func:`~.runtime.config_record`."""
    record = config_record(model.cfg) if getattr(model, 'cfg', None) is not None else {}
    classes = (getattr(model, 'dataset_meta', None) or {}).get('classes')
    if classes is not None:
        record['classes'] = list(classes)
    return {
        META_FORMAT: DETECTOR_FORMAT,
        'shufflenet_det.input': json.dumps(dict(
            name=INPUT_NAME, dtype='float32', shape=[1, 3, 'height', 'width'],
            channel_order='BGR', value_range=[0, 255],
            convention='the image after the test pipeline Resize; not normalised, not padded '
                       '(the graph normalises and pads)')),
        'shufflenet_det.outputs': json.dumps(dict(
            boxes='float32 [K, 4] x1 y1 x2 y2 in input-image pixels (predict rescale=False); '
                  'divide by the Resize scale factor for the original image',
            scores='float32 [K], best first', labels='int64 [K], class index',
            **({'proposals': 'float32 [P, 4] RPN proposals',
                'proposal_scores': 'float32 [P]'} if len(outputs) > 3 else {}))),
        'shufflenet_det.detector': type(model).__name__,
        'shufflenet_det.layout': graph.layout,
        # A Python literal: mmcv's Resize needs its scale as a tuple, which JSON would lose.
        META_CONFIG: repr(record),
    }


def export_detector_onnx(model: nn.Module, path: str, opset: int = 17,
                         example_hw: tuple[int, int] = (320, 416),
                         with_proposals: bool = False) -> dict:
    """Export a Faster R-CNN (C4 or FPN) to one ONNX file at ``path`` (atomically), checked:
    default ONNX domain only, ``onnx.checker``.

    Args:
        model (nn.Module): An mmdet ``FasterRCNN`` (the plain model, not ``deploy_detector``'s).
        path (str): Output file.
        opset (int): ONNX opset, at least 16 (``RoiAlign``'s half-pixel mode). Default: 17.
        example_hw (tuple[int, int]): The tracing example's size; any works (nothing
            branches on the data in Python).
        with_proposals (bool): Also output the RPN proposals. Default: False.

    Returns:
        dict: ``path``, ``opset``, ``inputs``, ``outputs``, ``metadata``, ``num_nodes``.

    Raises:
        ValueError: for a model the graph does not implement, or opset < 16.
    """
    import onnx

    if opset < MIN_OPSET:
        raise ConfigError(f'opset must be at least {MIN_OPSET} (RoiAlign half_pixel), got {opset}')
    graph = FasterRCNNGraph(model.eval(), with_proposals=with_proposals).eval()
    example = torch.rand(1, 3, *example_hw) * 255
    outputs = [*OUTPUT_NAMES, *(['proposals', 'proposal_scores'] if with_proposals else [])]
    axes = {INPUT_NAME: {2: 'height', 3: 'width'},
            **{name: {0: 'num_detections'} for name in OUTPUT_NAMES},
            **{name: {0: 'num_proposals'} for name in outputs[3:]}}
    metadata = detector_metadata(model, graph, outputs)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        torch_onnx_export_legacy(graph, (example, ), tmp, input_names=[INPUT_NAME],
                                 output_names=outputs, dynamic_axes=axes, opset_version=opset,
                                 do_constant_folding=True)
        proto = onnx.load(tmp)
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        domains = {n.domain for n in proto.graph.node} | {o.domain for o in proto.opset_import}
        if domains - set(DEFAULT_DOMAINS):
            raise RuntimeError(f'the exported graph uses operator domains {sorted(domains)}')
        onnx.checker.check_model(proto)
        onnx.save(proto, tmp)
    return dict(path=str(path), opset=opset, inputs=[INPUT_NAME], outputs=outputs,
                metadata=metadata, num_nodes=len(proto.graph.node))


def export_detector(config: str, checkpoint: str, out: str, opset: int = 17,
                    int8: bool = False, calib_dir: Optional[str] = None, calib_num: int = 100,
                    progress: Callable[[str], None] = print) -> dict:
    """``tools/export_onnx.py CONFIG CHECKPOINT``: ``checkpoint`` (loaded strictly into
    ``config``'s detector) to ``out``, run once in ONNX Runtime; with ``int8`` also
    ``int8_path(out)``, calibrated on the first ``calib_num`` images of ``calib_dir`` put
    through the recorded test pipeline. A failure leaves neither file.

    Returns:
        dict: :func:`export_detector_onnx`'s summary and, with ``int8``, ``int8_path`` and
        ``fp32_nodes`` (the layers left in fp32).

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
        onnxruntime_session(fp32_tmp, threads=1).run(
            None, {INPUT_NAME: np.zeros((1, 3, 64, 64), np.float32)})
        if int8:
            keep = fp32_nodes_of(fp32_tmp)
            pipeline = ONNXRuntimeDetector(fp32_tmp).pipeline
            inputs = (
                pipeline(dict(img=read_image(p), img_id=0))['inputs'].numpy()
                .astype(np.float32)[None] for p in images)
            quantize_int8(fp32_tmp, int8_path(out), inputs, len(images), nodes_to_exclude=keep,
                          progress=progress)
            info.update(int8_path=int8_path(out), fp32_nodes=keep)
    progress(f'wrote {out}: {info["num_nodes"]} nodes, opset {opset}, default ONNX domain only, '
             f'{info["metadata"]["shufflenet_det.layout"]} layout; ONNX Runtime runs it')
    return info
