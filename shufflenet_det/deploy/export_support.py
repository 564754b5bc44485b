"""What the detector graph implements: the check that refuses anything else, by name.

:class:`~shufflenet_det.deploy.detector_graph.FasterRCNNGraph` mirrors one family of
mmdet models: ``FasterRCNN`` with ``DetDataPreprocessor``, ``RPNHead`` with an
``AnchorGenerator``, ``StandardRoIHead`` with a ``SingleRoIExtractor`` of average
RoIAlign and a (shared or convolutional) ``BBoxHead``, ``DeltaXYWHBBoxCoder`` decoding
and plain ``nms``. :func:`check_supported` names the first part of a model outside
it, before anything is traced, so that an export never writes a graph that computes
something else.
"""
from torch import nn

from ..errors import ConfigError
from ..models.layers import PointwiseMatmul
from .fast_path import TorchvisionRoIAlign


def nms_settings(cfg, where: str) -> dict:
    """The ``nms`` entry of a test config, refusing what the graph does not implement."""
    nms_cfg = dict(cfg.get('nms') or {})
    if not nms_cfg:
        raise ConfigError(f'{where}.nms is not set; the graph needs an IoU threshold')
    if nms_cfg.get('type', 'nms') != 'nms':
        raise ConfigError(f"{where}.nms.type {nms_cfg['type']!r} is not supported, only 'nms'")
    unknown = set(nms_cfg) - {'type', 'iou_threshold', 'class_agnostic', 'split_thr'}
    if unknown:
        raise ConfigError(f'{where}.nms keys {sorted(unknown)} are not supported')
    return dict(iou_threshold=float(nms_cfg['iou_threshold']),
                class_agnostic=bool(nms_cfg.get('class_agnostic', False)),
                split_thr=int(nms_cfg.get('split_thr', 10000)))


def _check_type_supported(kind: str, module, allowed: tuple) -> None:
    if type(module) not in allowed:
        names = ', '.join(t.__name__ for t in allowed)
        raise ConfigError(f'{kind} {type(module).__name__} is not supported (supported: {names})')


def check_supported(model: nn.Module) -> None:
    """Raise a ConfigError (a ValueError) naming the first part of ``model`` the graph does
    not implement."""
    from mmdet.models.data_preprocessors import DetDataPreprocessor
    from mmdet.models.dense_heads import RPNHead
    from mmdet.models.detectors import FasterRCNN
    from mmdet.models.roi_heads import StandardRoIHead
    from mmdet.models.roi_heads.bbox_heads import (BBoxHead, ConvFCBBoxHead,
                                                   Shared2FCBBoxHead, Shared4Conv1FCBBoxHead)
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
    from mmdet.models.task_modules.prior_generators import AnchorGenerator
    from mmcv.ops import RoIAlign

    _check_type_supported('detector', model, (FasterRCNN, ))
    _check_type_supported('data preprocessor', model.data_preprocessor, (DetDataPreprocessor, ))
    _check_type_supported('RPN head', model.rpn_head, (RPNHead, ))
    _check_type_supported('RoI head', model.roi_head, (StandardRoIHead, ))
    roi_head, rpn_head = model.roi_head, model.rpn_head
    if roi_head.with_mask:
        raise ConfigError('mask heads are not supported')
    _check_type_supported('RoI extractor', roi_head.bbox_roi_extractor, (SingleRoIExtractor, ))
    _check_type_supported('box head', roi_head.bbox_head,
                          (BBoxHead, ConvFCBBoxHead, Shared2FCBBoxHead, Shared4Conv1FCBBoxHead))
    _check_type_supported('anchor generator', rpn_head.prior_generator, (AnchorGenerator, ))
    bbox_head = roi_head.bbox_head
    if getattr(bbox_head, 'custom_cls_channels', False):
        raise ConfigError('a box head with custom classification channels '
                          f'({type(bbox_head.loss_cls).__name__}) is not supported')
    if not (bbox_head.with_cls and bbox_head.with_reg):
        raise ConfigError('the box head must both classify and regress')
    if getattr(rpn_head.prior_generator, 'use_box_type', False) \
            or getattr(rpn_head, 'use_box_type', False) \
            or getattr(bbox_head, 'predict_box_type', 'hbox') != 'hbox':
        raise ConfigError('box types other than plain horizontal tensors are not supported')
    if any(isinstance(m, PointwiseMatmul) for m in model.modules()):
        raise ConfigError(
            "the model went through switch_to_deploy() with pointwise='matmul': export the "
            "plain model (ONNX Runtime runs grouped 1x1 convolutions faster as Conv than as "
            "MatMul, and folds batch norm itself; docs/deploy.md)")
    extractor = roi_head.bbox_roi_extractor
    for layer in extractor.roi_layers:
        if not (isinstance(layer, TorchvisionRoIAlign)
                or (isinstance(layer, RoIAlign) and layer.pool_mode == 'avg')):
            raise ConfigError(f'RoI layer {layer} is not supported, only average RoIAlign')
    if rpn_head.test_cfg is None or roi_head.test_cfg is None:
        raise ConfigError('the model has no test_cfg.rpn / test_cfg.rcnn')
