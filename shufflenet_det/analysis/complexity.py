"""Parameters and multiply-adds, counted with MMEngine's ``FlopAnalyzer``.

MMEngine counts one multiply-add as one FLOP, the paper's convention. Batch
norm is left out: at inference it folds into the preceding convolution, and the
paper's complexities (Table 1) count convolutions and the classifier only.
Element-wise ReLU and additions, max and average pooling are not counted either
(MMEngine has no handle for them); global average pooling is, by MMEngine's
default, and adds a negligible amount (docs/benchmarks.md, Complexity, compares
the totals with the paper's).
"""
from typing import Optional

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from torch import nn

from ..config import load_config
from ..errors import ConfigError
from ..models import ShuffleNetClassifier

# Paper Table 1 (1x, g = 1, 2, 3, 4, 8) and the official g=3 release (0.5x-2.0x), MFLOPs.
PAPER_MFLOPS = {
    (1, 1.0): 143, (2, 1.0): 140, (3, 1.0): 137, (4, 1.0): 133, (8, 1.0): 137,
    (3, 0.5): 38, (3, 1.5): 292, (3, 2.0): 524,
}


def _zero(inputs, outputs) -> int:
    return 0


def count_complexity(model: nn.Module, inputs: torch.Tensor | tuple) -> dict:
    """Count ``model``'s parameters and multiply-adds for one forward on ``inputs``.

    Returns:
        dict: ``params`` and ``flops`` (multiply-adds), both ints.
    """
    inputs = inputs if isinstance(inputs, tuple) else (inputs, )
    was_training = model.training
    model.eval()
    try:
        analyzer = FlopAnalyzer(model, inputs)
        # set_op_handle(name, None) in mmengine 0.10.7 keeps the old handle counting;
        # a handle that counts zero does remove it.
        analyzer.set_op_handle('aten::batch_norm', _zero)
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        flops = analyzer.total()
    finally:
        model.train(was_training)
    return dict(params=parameter_count(model)[''], flops=int(flops))


def paper_table() -> str:
    """Markdown table: parameters and MFLOPs of Table 1 and the official g=3 sizes, beside
    the paper's (``tools/get_flops.py --paper-table``; docs/benchmarks.md quotes it)."""
    rows = ['| model | params (M) | MFLOPs, this project | MFLOPs, paper | difference |',
            '|---|---|---|---|---|']
    for (groups, widen), paper in PAPER_MFLOPS.items():
        c = classifier_complexity(groups, widen)
        mflops = c['flops'] / 1e6
        rows.append(f'| {widen}x g={groups} | {c["params"] / 1e6:.2f} | {mflops:.1f} | {paper} | '
                    f'{100 * (mflops - paper) / paper:+.1f}% |')
    return '\n'.join(rows)


def classifier_complexity(groups: int = 3, widen_factor: float = 1.0, input_size: int = 224,
                          num_classes: int = 1000, **backbone_kwargs) -> dict:
    """Complexity of the ImageNet classifier (backbone, pooling, fc) at ``input_size``."""
    model = ShuffleNetClassifier(
        backbone=dict(type='ShuffleNetV1', groups=groups, widen_factor=widen_factor,
                      out_indices=(2, ), **backbone_kwargs),
        num_classes=num_classes, data_preprocessor=dict(type='BaseDataPreprocessor'))
    return count_complexity(model, torch.zeros(1, 3, input_size, input_size))


def detector_complexity(model: nn.Module, height: int, width: int) -> dict:
    """Complexity of a detector in eval mode on one ``height`` x ``width`` image.

    The image is the only traced input (as in MMDetection's own get_flops), and
    the test-time settings of ``model`` apply. A two-stage detector's RoI head runs
    on ``test_cfg.rpn.max_per_img`` proposals: with random weights the RPN's NMS
    would keep an arbitrary number of boxes, so it is lifted (IoU threshold 1.0)
    while counting, and the RoI head sees the full count, as it does behind a
    trained RPN on a real image.

    Returns:
        dict: ``params``, ``flops`` (multiply-adds) and ``rois`` (proposals the
        box head saw; None for one-stage detectors).
    """
    from functools import partial

    from mmdet.structures import DetDataSample

    sample = DetDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width),
                                         scale_factor=(1.0, 1.0), pad_shape=(height, width),
                                         batch_input_shape=(height, width)))
    image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(0))
    data = model.data_preprocessor(dict(inputs=[image], data_samples=[sample]), False)
    rois = []
    extractor = getattr(getattr(model, 'roi_head', None), 'bbox_roi_extractor', None)
    handle = None if extractor is None else extractor.register_forward_hook(
        lambda m, args, out: rois.append(out.shape[0]))
    rpn_cfg = getattr(getattr(model, 'rpn_head', None), 'test_cfg', None)
    iou = rpn_cfg.nms.iou_threshold if rpn_cfg is not None else None
    original = model.forward
    model.forward = partial(original, data_samples=data['data_samples'], mode='tensor')
    try:
        if rpn_cfg is not None:
            rpn_cfg.nms.iou_threshold = 1.0
        result = count_complexity(model, data['inputs'])
    finally:
        model.forward = original
        if rpn_cfg is not None:
            rpn_cfg.nms.iou_threshold = iou
        if handle is not None:
            handle.remove()
    result['rois'] = rois[-1] if rois else None
    return result


MIN_INPUT_SIDE = 32  # ShuffleNet V1 downsamples 32 times


def _check_shape(option: str, *sides: int) -> None:
    if any(side < MIN_INPUT_SIDE for side in sides):
        raise ConfigError(f'{option} {" ".join(map(str, sides))}: every side must be '
                          f'{MIN_INPUT_SIDE} or more (the backbone downsamples 32 times)')


def config_complexity_text(config: str, shape: Optional[tuple[int, int]] = None,
                           cfg_options: Optional[dict] = None) -> str:
    """One line: a config's model counted whole, a detector on a ``shape`` image
    (default 600x800), a classifier (``ShuffleNetClassifier``) on a ``shape`` crop
    (default: 224x224)."""
    from mmdet.models.detectors import BaseDetector
    from mmdet.registry import MODELS

    model = MODELS.build(load_config(config, cfg_options).model).eval()
    if isinstance(model, BaseDetector):
        h, w = shape or (600, 800)
        c = detector_complexity(model, h, w)
        rois = '' if c['rois'] is None else f', box head on {c["rois"]} proposals'
        return (f'{config} at {h}x{w}: {c["params"] / 1e6:.2f} M parameters, '
                f'{c["flops"] / 1e9:.2f} GFLOPs (multiply-adds{rois})')
    if not isinstance(model, ShuffleNetClassifier):
        raise ConfigError(f'{config}: model type {type(model).__name__} is neither a '
                          'detector (mmdet BaseDetector) nor ShuffleNetClassifier')
    h, w = shape or (224, 224)
    c = count_complexity(model, torch.zeros(1, 3, h, w))
    return (f'{config} at {h}x{w}: {c["params"] / 1e6:.3f} M parameters, '
            f'{c["flops"] / 1e6:.1f} MFLOPs (multiply-adds, classifier)')


def complexity_report(config: Optional[str] = None, shape: Optional[tuple[int, int]] = None,
                      cfg_options: Optional[dict] = None, groups: int = 3,
                      widen_factor: float = 1.0, se: bool = False, shallow: bool = False,
                      size: int = 224, table: bool = False) -> str:
    """``tools/get_flops.py``: the paper table, a config's model (detector or
    classifier, :func:`config_complexity_text`), or one classifier, as text.

    The text is printed and returned.

    Raises:
        ConfigError: an input side under 32 pixels, or a config whose model is
            neither a detector nor the classifier.
    """
    if shape is not None:
        _check_shape('--shape', *shape)
    _check_shape('--size', size)
    if table:
        text = paper_table()
    elif config:
        text = config_complexity_text(config, shape, cfg_options)
    else:
        c = classifier_complexity(groups, widen_factor, size, with_se=se, shallow=shallow)
        text = (f'ShuffleNetV1 {widen_factor}x g={groups}{" +SE" if se else ""}'
                f'{" shallow" if shallow else ""} at {size}x{size}: {c["params"] / 1e6:.3f} M '
                f'parameters, {c["flops"] / 1e6:.1f} MFLOPs (multiply-adds)')
    print(text)
    return text
