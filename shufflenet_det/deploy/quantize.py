"""int8 models from exported fp32 ONNX files: ONNX Runtime's static quantization (QDQ).

Calibration runs the fp32 graph on real images and records each quantized tensor's
range (min/max). The graph keeps the default ONNX domain: ``QuantizeLinear`` and
``DequantizeLinear`` pairs around the quantized operators, which ONNX Runtime fuses
into int8 kernels. What is left in fp32 is named by the caller (``nodes_to_exclude``)
and reported in the file's metadata.
"""
import os
import os.path as osp
import tempfile
from collections.abc import Callable, Iterable, Sequence
from typing import Optional

import numpy as np

from ..errors import ConfigError, InputFileNotFoundError
from ..fileio import atomic_path
from ..images import IMAGE_EXTENSIONS

#: Operators quantized by default: the convolutions and fully connected layers, where
#: the multiply-adds are.
QUANTIZED_OPS = ('Conv', 'MatMul', 'Gemm')


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


class _Feed:
    """ONNX Runtime's ``CalibrationDataReader``: one input dict per calibration image."""

    def __init__(self, input_name: str, arrays: Iterable[np.ndarray],
                 progress: Callable[[str], None], total: int) -> None:
        self.input_name, self.arrays = input_name, iter(arrays)
        self.progress, self.total, self.done = progress, total, 0

    def get_next(self) -> Optional[dict]:
        array = next(self.arrays, None)
        if array is None:
            return None
        self.done += 1
        if self.done % 25 == 0 or self.done == self.total:
            self.progress(f'calibration: {self.done}/{self.total} images')
        return {self.input_name: np.ascontiguousarray(array, dtype=np.float32)}


def quantize_int8(fp32_path: str, int8_path: str, inputs: Iterable[np.ndarray], total: int,
                  nodes_to_exclude: Sequence[str] = (), op_types: Sequence[str] = QUANTIZED_OPS,
                  progress: Optional[Callable[[str], None]] = print) -> list[str]:
    """Write the int8 (QDQ) version of ``fp32_path`` to ``int8_path``, calibrated on ``inputs``.

    Args:
        fp32_path (str): The exported fp32 model.
        int8_path (str): Where the int8 model goes (written atomically).
        inputs (Iterable[np.ndarray]): Calibration inputs for the model's first input.
        total (int): How many ``inputs`` there are (for progress).
        nodes_to_exclude (Sequence[str]): Nodes kept in fp32.
        op_types (Sequence[str]): Operator types to quantize.
        progress (callable, optional): Called with progress messages; None for silence.

    Returns:
        list[str]: The quantizable nodes kept in fp32.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(_Feed, CalibrationDataReader):
        pass

    progress = progress or (lambda message: None)
    input_name = onnx.load(fp32_path, load_external_data=False).graph.input[0].name
    with tempfile.TemporaryDirectory() as tmp:
        prepared = osp.join(tmp, 'prepared.onnx')
        quant_pre_process(fp32_path, prepared, skip_symbolic_shape=True)
        with atomic_path(int8_path) as partial:
            quantize_static(prepared, partial, Reader(input_name, inputs, progress, total),
                            quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=list(op_types),
                            nodes_to_exclude=list(nodes_to_exclude))
    progress(f'wrote {int8_path} (int8, {total} calibration images; '
             f'{len(nodes_to_exclude)} quantizable nodes kept in fp32)')
    return list(nodes_to_exclude)
