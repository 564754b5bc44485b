"""ONNX export of the backbone and the classifier, checked against ONNX Runtime."""
from collections.abc import Iterator
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from ..checkpoint import (BACKBONE_PREFIX, check_shuffle_order, load_model_checkpoint,
                          load_strict, read_checkpoint, select_prefix)
from ..errors import CheckFailedError, ConfigError
from ..fileio import atomic_path, check_writable
from ..images import read_image
from ..models import ShuffleNetClassifier, ShuffleNetV1
from .legacy_onnx_exporter import torch_onnx_export_legacy


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
        torch_onnx_export_legacy(model, (example, ), tmp, input_names=['input'],
                                output_names=names, dynamic_axes=axes, opset_version=opset)
    return names


def onnxruntime_session(path: str, threads: Optional[int] = None, spinning: bool = True):
    """An ONNX Runtime CPU session for ``path`` (``threads`` intra-op threads if given).

    ``spinning=False`` stops the session's idle worker threads from spinning. Each
    session has its own thread pool, so several sessions in one process (a benchmark)
    otherwise take the cores from each other, and each one's timings measure the others'
    spinning (docs/benchmarks.md, Method).
    """
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def max_abs_diff(model: nn.Module, path: str, x: torch.Tensor) -> float:
    """Largest absolute difference between PyTorch and ONNX Runtime outputs on ``x``."""
    with torch.no_grad():
        expected = _Outputs(model).eval()(x)
    got = onnxruntime_session(path).run(None, {'input': x.numpy()})
    return max(float(np.abs(e.numpy() - g).max()) for e, g in zip(expected, got))


def _architecture(checkpoint: Optional[str], meta: dict, groups: Optional[int],
                  widen_factor: Optional[float]) -> dict:
    """The backbone settings: the checkpoint's recorded ``arch``, else the arguments."""
    recorded = meta.get('arch') or {}
    for name, given in (('groups', groups), ('widen_factor', widen_factor)):
        if given is not None and name in recorded and recorded[name] != given:
            raise ConfigError(f'{checkpoint} holds ShuffleNetV1 weights with {name}='
                              f'{recorded[name]} (its meta[\'arch\']), but {name}={given} was '
                              'requested; leave the option out to use the recorded one')
    return dict(groups=groups or recorded.get('groups', 3),
                widen_factor=widen_factor or recorded.get('widen_factor', 1.0),
                shuffle_order=recorded.get('shuffle_order', 'paper'))


def build_for_export(checkpoint: Optional[str] = None, groups: Optional[int] = None,
                     widen_factor: Optional[float] = None, classifier: bool = False,
                     num_classes: int = 1000) -> nn.Module:
    """The backbone or classifier to export, loaded strictly from ``checkpoint`` if given.

    A checkpoint that records its architecture (``meta['arch']``, written by the
    converter and by ``tools/export_backbone.py``) decides ``groups``,
    ``widen_factor`` and ``shuffle_order``; a conflicting ``groups`` or
    ``widen_factor`` is an error naming both. Without a checkpoint the weights are
    random (the official initialisation).
    """
    state, meta = read_checkpoint(checkpoint) if checkpoint else ({}, {})
    arch = _architecture(checkpoint, meta, groups, widen_factor)
    if classifier:
        model = ShuffleNetClassifier(backbone=dict(type=ShuffleNetV1, out_indices=(2, ), **arch),
                                     num_classes=num_classes,
                                     data_preprocessor=dict(type='BaseDataPreprocessor'))
    else:
        model = ShuffleNetV1(out_indices=(0, 1, 2), **arch)  # Stages 2-4
    if not checkpoint:
        model.init_weights()
    elif classifier:
        load_model_checkpoint(model, dict(state_dict=state, meta=meta), checkpoint)
    else:
        check_shuffle_order(meta, {'the backbone': model}, checkpoint)
        load_strict(model, select_prefix(state, BACKBONE_PREFIX, checkpoint), checkpoint)
    return model.eval()


def resized_inputs(images: list[str], height: int, width: int) -> Iterator[np.ndarray]:
    """Each image resized to ``height`` x ``width``: BGR, 0-255, float32 [1, 3, H, W]."""
    import mmcv
    for path in images:
        pixels = mmcv.imresize(read_image(path), (width, height))
        yield pixels.transpose(2, 0, 1)[None].astype(np.float32)


def _check_shape(shape: tuple[int, ...]) -> None:
    if len(shape) != 4 or shape[1] != 3 or min(shape) < 1:
        raise ConfigError(f'--shape must be N 3 H W with N, H, W >= 1 (a batch of BGR '
                          f'images), got {" ".join(map(str, shape))}')


def export_shufflenet_onnx(out: str, checkpoint: Optional[str] = None,
                           groups: Optional[int] = None, widen_factor: Optional[float] = None,
                           classifier: bool = False, num_classes: int = 1000,
                           shape: tuple[int, ...] = (1, 3, 224, 224), opset: int = 17,
                           tolerance: float = 1e-4, int8: bool = False,
                           calib_dir: Optional[str] = None, calib_num: int = 100,
                           progress: Callable[[str], None] = print) -> float:
    """``tools/export_onnx.py`` for the backbone (Stage 2-4 maps) or the classifier (logits).

    With ``int8``, also writes ``*_int8.onnx``: every convolution and the classifier's
    fully connected layer quantized (QDQ), calibrated on the first ``calib_num`` images
    of ``calib_dir`` resized to ``shape``. The files appear only once the fp32 file
    has passed the comparison with PyTorch (and the int8 file is complete); a failure
    leaves neither, and a destination that cannot be written is refused first.

    Returns:
        float: The largest difference between ONNX Runtime and PyTorch (fp32 file).

    Raises:
        InputError: an output that cannot be written, a bad ``shape`` or ``tolerance``,
            a missing or mismatched checkpoint, too few calibration images.
        CheckFailedError: the difference exceeds ``tolerance`` (nothing is written).
    """
    from .quantize import calibration_images, int8_path, quantize_int8
    check_writable(out, '--out')
    if int8:
        check_writable(int8_path(out), '--int8 output')
    _check_shape(tuple(shape))
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
        if int8:
            quantize_int8(tmp, int8_path(out), resized_inputs(images, *shape[2:]), len(images),
                          progress=progress)
    progress(f'wrote {out}; ONNX Runtime vs PyTorch max abs diff {diff:.2e}')
    return diff
