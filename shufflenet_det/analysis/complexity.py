"""Parameters and multiply-adds (the paper's "FLOPs") by MMEngine's ``FlopAnalyzer``, batch
norm left out as in the paper (it folds into the convolution at inference; docs/benchmarks.md).
"""
from typing import Optional

import torch
from mmdet.models.detectors import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.analysis import FlopAnalyzer, parameter_count

from ..config import load_config
from ..errors import ConfigError
from ..models import ShuffleNetClassifier

# Paper Table 1 (1x, g = 1, 2, 3, 4, 8) and the official g=3 release (0.5x-2.0x), MFLOPs.
PAPER_MFLOPS = {(1, 1.0): 143, (2, 1.0): 140, (3, 1.0): 137, (4, 1.0): 133, (8, 1.0): 137,
                (3, 0.5): 38, (3, 1.5): 292, (3, 2.0): 524}
MIN_INPUT_SIDE = 32  # ShuffleNet V1 downsamples 32 times


def count_complexity(model: torch.nn.Module, inputs: torch.Tensor | tuple) -> dict:
    """``params`` and ``flops`` (multiply-adds) of ``model``, put in eval mode, on ``inputs``."""
    analyzer = FlopAnalyzer(model.eval(), inputs if isinstance(inputs, tuple) else (inputs, ))
    # set_op_handle(name, None) keeps the old handle in mmengine 0.10.7; one counting zero works.
    analyzer.set_op_handle('aten::batch_norm', lambda inputs, outputs: 0)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return dict(params=parameter_count(model)[''], flops=int(analyzer.total()))


def build_classifier(groups: int, widen_factor: float, num_classes: int = 1000,
                     **backbone_kwargs) -> ShuffleNetClassifier:
    """The ImageNet classifier (backbone, pooling, fc), randomly initialised by its constructors."""
    return ShuffleNetClassifier(
        backbone=dict(type='ShuffleNetV1', groups=groups, widen_factor=widen_factor,
                      out_indices=(2, ), **backbone_kwargs),
        num_classes=num_classes, data_preprocessor=dict(type='BaseDataPreprocessor'))


def classifier_complexity(groups: int = 3, widen_factor: float = 1.0, input_size: int = 224,
                          num_classes: int = 1000, **backbone_kwargs) -> dict:
    """Complexity of the ImageNet classifier at ``input_size``."""
    model = build_classifier(groups, widen_factor, num_classes, **backbone_kwargs)
    return count_complexity(model, torch.zeros(1, 3, input_size, input_size))


def detector_inputs(model: torch.nn.Module, height: int, width: int) -> dict:
    """One random ``height`` x ``width`` image through ``model``'s data preprocessor."""
    hw = (height, width)
    sample = DetDataSample(metainfo=dict(img_shape=hw, ori_shape=hw, pad_shape=hw,
                                         batch_input_shape=hw, scale_factor=(1.0, 1.0)))
    image = torch.randint(0, 256, (3, *hw), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(0))
    return model.data_preprocessor(dict(inputs=[image], data_samples=[sample]), False)


def detector_complexity(model: torch.nn.Module, height: int, width: int) -> dict:
    """``params``, ``flops`` and ``rois`` (proposals the box head saw, if any) of an eval-mode
    detector on one image. Its RPN's NMS is lifted (IoU threshold 1.0, left so): the RoI head
    sees ``test_cfg.rpn.max_per_img`` proposals as behind a trained RPN, not the arbitrary
    number random weights would leave."""
    if hasattr(model, 'rpn_head'):
        model.rpn_head.test_cfg.nms.iou_threshold = 1.0
    data, rois = detector_inputs(model, height, width), []
    extractor = getattr(getattr(model, 'roi_head', None), 'bbox_roi_extractor', None)
    hook = extractor and extractor.register_forward_hook(lambda m, a, out: rois.append(len(out)))
    forward = model.forward
    model.forward = lambda inputs: forward(inputs, data['data_samples'], mode='tensor')
    try:
        result = count_complexity(model, data['inputs'])
    finally:
        del model.forward  # the class's own again
        if hook:
            hook.remove()
    return dict(result, rois=rois[-1] if rois else None)


def complexity_report(config: Optional[str] = None, shape: Optional[tuple[int, int]] = None,
                      cfg_options: Optional[dict] = None, groups: int = 3,
                      widen_factor: float = 1.0, se: bool = False, shallow: bool = False,
                      size: int = 224, table: bool = False) -> str:
    """``tools/get_flops.py``: the paper table, a config's model (a detector on a ``shape``
    image, default 600x800, or the classifier, default 224x224), or one classifier; the
    text is printed and returned.

    Raises:
        ConfigError: an input side under 32 pixels, or a config whose model is neither
            a detector nor ``ShuffleNetClassifier``.
    """
    for option, sides in (('--shape', shape or [MIN_INPUT_SIDE]), ('--size', [size])):
        if min(sides) < MIN_INPUT_SIDE:
            raise ConfigError(f'{option} {" ".join(map(str, sides))}: every side must be '
                              f'{MIN_INPUT_SIDE} or more (the backbone downsamples 32 times)')
    if table:
        text = ('| model | params (M) | MFLOPs, this project | MFLOPs, paper | difference |\n'
                '|---|---|---|---|---|')
        for (groups, widen), paper in PAPER_MFLOPS.items():
            c = classifier_complexity(groups, widen)
            mflops = c['flops'] / 1e6
            text += (f'\n| {widen}x g={groups} | {c["params"] / 1e6:.2f} | {mflops:.1f} | {paper} '
                     f'| {100 * (mflops - paper) / paper:+.1f}% |')
    elif config:
        model = MODELS.build(load_config(config, cfg_options).model).eval()
        if isinstance(model, BaseDetector):
            h, w = shape or (600, 800)
            c = detector_complexity(model, h, w)
            rois = '' if c['rois'] is None else f', box head on {c["rois"]} proposals'
            text = (f'{config} at {h}x{w}: {c["params"] / 1e6:.2f} M parameters, '
                    f'{c["flops"] / 1e9:.2f} GFLOPs (multiply-adds{rois})')
        elif isinstance(model, ShuffleNetClassifier):
            h, w = shape or (224, 224)
            c = count_complexity(model, torch.zeros(1, 3, h, w))
            text = (f'{config} at {h}x{w}: {c["params"] / 1e6:.3f} M parameters, '
                    f'{c["flops"] / 1e6:.1f} MFLOPs (multiply-adds, classifier)')
        else:
            raise ConfigError(f'{config}: model type {type(model).__name__} is neither a '
                              'detector (mmdet BaseDetector) nor ShuffleNetClassifier')
    else:
        c = classifier_complexity(groups, widen_factor, size, with_se=se, shallow=shallow)
        text = (f'ShuffleNetV1 {widen_factor}x g={groups}{" +SE" if se else ""}'
                f'{" shallow" if shallow else ""} at {size}x{size}: {c["params"] / 1e6:.3f} M '
                f'parameters, {c["flops"] / 1e6:.1f} MFLOPs (multiply-adds)')
    print(text)
    return text
