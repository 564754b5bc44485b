"""ONNX export of the backbone and the classifier, checked against ONNX Runtime.

The detectors are not exported: MMDetection's two-stage and dense heads run
mmcv's NMS and RoIAlign, whose ONNX export lives in MMDeploy (a separate, heavy
toolchain with its own custom-op library for ONNX Runtime); this project does not
pull that in.
"""
from typing import Optional

import numpy as np
import torch
from torch import nn

from ..fileio import atomic_path


class _Outputs(nn.Module):
    """Wrap a model so ONNX sees a flat tuple of output tensors."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model(x)
        return tuple(out) if isinstance(out, (tuple, list)) else (out, )


def export_onnx(model: nn.Module, path: str, input_shape: tuple[int, int, int, int],
                opset: int = 17, dynamic_batch: bool = True) -> list[str]:
    """Export ``model`` (eval mode) to ``path``; returns the output names.

    The file is written under a temporary name and renamed once complete.
    """
    model = _Outputs(model).eval()
    example = torch.randn(*input_shape)
    with torch.no_grad():
        n_out = len(model(example))
    names = [f'output{i}' for i in range(n_out)]
    axes = {name: {0: 'batch'} for name in ['input', *names]} if dynamic_batch else None
    with atomic_path(path) as tmp:
        torch.onnx.export(model, (example, ), tmp, input_names=['input'], output_names=names,
                          dynamic_axes=axes, opset_version=opset, dynamo=False)
    return names


def onnxruntime_session(path: str, threads: Optional[int] = None):
    """An ONNX Runtime CPU session for ``path`` (``threads`` intra-op threads if given)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def max_abs_diff(model: nn.Module, path: str, x: torch.Tensor) -> float:
    """Largest absolute difference between PyTorch and ONNX Runtime outputs on ``x``."""
    with torch.no_grad():
        expected = _Outputs(model).eval()(x)
    got = onnxruntime_session(path).run(None, {'input': x.numpy()})
    return max(float(np.abs(e.numpy() - g).max()) for e, g in zip(expected, got))
