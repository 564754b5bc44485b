"""A whole Faster R-CNN detector as one standard ONNX graph, checked against mmdet.

:class:`FasterRCNNGraph` wraps an MMDetection ``FasterRCNN`` (C4 with a shared
head, or FPN) in a traceable module that goes from the resized image to the
final detections: the data preprocessor's normalisation and padding, backbone
and neck, the RPN (anchors for the dynamic feature sizes, per-level top-k,
decoding, small-box filter, NMS), RoIAlign with mmdet's RoI-to-level mapping,
the shared head and box head, and the per-class post-processing
(``multiclass_nms``). :func:`export_detector_onnx` writes it with
the TorchScript exporter (``torchscript_export.py``); every node is in the default ONNX domain
(``RoiAlign`` and ``NonMaxSuppression`` included), so plain ONNX Runtime runs it,
without MMDeploy or custom operators.

Each step mirrors mmdet 3.3 / mmcv 2.1, in the same order of float operations
where that order can change a result:

===============================================  ===========================================
mmdet                                            here (ONNX operators)
===============================================  ===========================================
``DetDataPreprocessor``: BGR->RGB, (x-mean)/std,  Gather on channels, Sub, Div, then Pad
then pad bottom/right to ``pad_size_divisor``     (value ``pad_value``) with sizes from Shape
``AnchorGenerator.grid_priors``                   ``base_anchors`` as constants + Range shifts
``RPNHead._predict_by_feat_single``: sigmoid,     Sigmoid, TopK(min(nms_pre, n)), Gather
sort, first ``nms_pre`` per level
``DeltaXYWHBBoxCoder.decode`` (``delta2bbox``)    Mul/Add/Clip/Exp, then Max/Min with [W,H,W,H]
``min_bbox_size`` filter                          Greater, And, NonZero, Gather
``batched_nms`` (mmcv's class-offset trick)       ReduceMax, Mul/Add offsets, NonMaxSuppression
``SingleRoIExtractor`` + ``map_roi_levels``       Sqrt, Div, a count of GreaterOrEqual
                                                  (= floor(log2)); per level: NonZero,
                                                  RoiAlign; heads in level order, their
                                                  outputs put back (ScatterElements, Gather)
mmcv ``RoIAlign(aligned=True)``                   RoiAlign, coordinate_transformation_mode
                                                  'half_pixel' (opset 16+)
shared head, ``BBoxHead.forward``                 traced as they are
``BBoxHead._predict_by_feat_single``              Softmax, decode per class, Clip
``multiclass_nms``: ``scores > score_thr``,       Greater, NonZero, class-offset
``batched_nms`` by label, first ``max_per_img``   NonMaxSuppression, Slice
===============================================  ===========================================

Where the two can still differ: the order of boxes whose scores are exactly
equal (ONNX Runtime's TopK and NonMaxSuppression take the lower index first, a
PyTorch sort need not), and float rounding (ONNX Runtime sums convolutions in
another order), which moves boxes by about 1e-4 pixels in the tests and could
flip a comparison that sits exactly on a threshold. ``batched_nms`` runs its
per-class loop from ``split_thr`` (10000) boxes on; that loop also uses the
offset boxes, so it keeps the same boxes as the single call the graph makes.
"""
import json
import math
from collections import Counter
import sys
import time
import warnings
from inspect import signature
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..fileio import atomic_path
from ..models.layers import PointwiseMatmul
from .fast_path import TorchvisionRoIAlign
from .torchscript_export import export_torchscript_onnx

INPUT_NAME = 'image'
OUTPUT_NAMES = ('boxes', 'scores', 'labels')
PROPOSAL_NAMES = ('proposals', 'proposal_scores')
MIN_OPSET = 16  # RoiAlign's coordinate_transformation_mode ('half_pixel' = mmcv aligned=True)
#: metadata_props keys that ONNXRuntimeDetector reads.
META_TEST_PIPELINE = 'shufflenet_det.test_pipeline'
META_CLASSES = 'shufflenet_det.classes'
DEFAULT_DOMAINS = ('', 'ai.onnx')


class _BatchedNMS(torch.autograd.Function):
    """mmcv's ``batched_nms`` with ``type='nms'``: kept indices, best score first.

    Eager: mmcv's ``batched_nms`` itself (an empty result for no boxes, where mmdet
    does not call it). ONNX: mmcv's class-offset trick, as mmcv computes it: boxes of
    class ``i`` moved by ``i * (max coordinate + 1)``, so that boxes of different
    classes never overlap, then one ``NonMaxSuppression`` (one batch, one class). Both suppress a box whose IoU with a
    kept one is *greater* than the threshold. ``ReduceMax`` of no boxes is -inf in ONNX
    Runtime; the offsets are then empty too.
    """

    @staticmethod
    def forward(ctx, boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float,
                class_agnostic: bool, split_thr: int) -> Tensor:
        if boxes.numel() == 0:
            return boxes.new_zeros((0, ), dtype=torch.long)
        from mmcv.ops import batched_nms
        _, keep = batched_nms(boxes, scores, idxs, dict(
            type='nms', iou_threshold=iou_threshold, class_agnostic=class_agnostic,
            split_thr=split_thr))
        return keep

    @staticmethod
    def symbolic(g, boxes, scores, idxs, iou_threshold, class_agnostic, split_thr):
        from onnx import TensorProto

        def const(value, dtype):
            return g.op('Constant', value_t=torch.tensor(value, dtype=dtype))

        if not class_agnostic:
            max_coordinate = g.op('ReduceMax', boxes, keepdims_i=0)
            scale = g.op('Add', max_coordinate, const(1.0, torch.float))
            offsets = g.op('Mul', g.op('Cast', idxs, to_i=TensorProto.FLOAT), scale)
            boxes = g.op('Add', boxes, g.op('Unsqueeze', offsets, const([1], torch.long)))
        boxes3 = g.op('Unsqueeze', boxes, const([0], torch.long))          # [1, N, 4]
        scores3 = g.op('Unsqueeze', scores, const([0, 1], torch.long))     # [1, 1, N]
        selected = g.op('NonMaxSuppression', boxes3, scores3,
                        const([sys.maxsize], torch.long), const([iou_threshold], torch.float))
        return g.op('Gather', selected, const(2, torch.long), axis_i=1)    # [K, 3] -> [K]


class _RoiAlign(torch.autograd.Function):
    """Average RoIAlign of image 0's feature map.

    Eager: mmcv's ``roi_align`` (what mmdet runs). ONNX: ``RoiAlign`` with
    ``coordinate_transformation_mode`` 'half_pixel' for mmcv's ``aligned=True``
    (subtract half a pixel, no minimum RoI size) and 'output_half_pixel' for
    ``aligned=False`` (no shift, RoIs at least one pixel), ``sampling_ratio`` 0
    being adaptive (``ceil(roi size / output size)`` samples per bin) in both.
    """

    @staticmethod
    def forward(ctx, feats: Tensor, boxes: Tensor, batch_indices: Tensor, out_h: int, out_w: int,
                spatial_scale: float, sampling_ratio: int, aligned: bool) -> Tensor:
        from mmcv.ops import roi_align
        rois = torch.cat([batch_indices[:, None].to(boxes), boxes], dim=1)
        return roi_align(feats, rois, (out_h, out_w), spatial_scale, sampling_ratio, 'avg',
                         aligned)

    @staticmethod
    def symbolic(g, feats, boxes, batch_indices, out_h, out_w, spatial_scale, sampling_ratio,
                 aligned):
        return g.op('RoiAlign', feats, boxes, batch_indices,
                    coordinate_transformation_mode_s='half_pixel' if aligned
                    else 'output_half_pixel',
                    mode_s='avg', output_height_i=out_h, output_width_i=out_w,
                    sampling_ratio_i=sampling_ratio, spatial_scale_f=spatial_scale)


def _shape(x: Tensor) -> Tensor:
    """``x``'s shape as an int64 tensor (an ONNX ``Shape`` when tracing)."""
    return torch._shape_as_tensor(x)


def _topk_count(n: Tensor, k: int) -> Tensor:
    """``min(k, n)`` that stays dynamic in a trace (ONNX TopK refuses k > n)."""
    return torch.minimum(n, torch.tensor(k, dtype=n.dtype))


def batched_nms_keep(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float,
                     class_agnostic: bool = False, split_thr: int = 10000) -> Tensor:
    """mmcv's ``batched_nms`` (``type='nms'``): indices of the kept boxes, best first;
    traced as standard ONNX operators (:class:`_BatchedNMS`)."""
    return _BatchedNMS.apply(boxes, scores, idxs, float(iou_threshold), bool(class_agnostic),
                             int(split_thr))


def delta_xywh_decode(rois: Tensor, deltas: Tensor, means, stds, max_ratio: float,
                      max_xyxy: Optional[Tensor], add_ctr_clamp: bool = False,
                      ctr_clamp: float = 32) -> Tensor:
    """mmdet's ``delta2bbox`` for matching ``rois`` and ``deltas`` of shape (N, 4).

    ``max_xyxy`` is ``[W, H, W, H]`` of the unpadded image (clip to it), or None.
    """
    denorm = deltas * deltas.new_tensor(stds).view(1, -1) + deltas.new_tensor(means).view(1, -1)
    dxy, dwh = denorm[:, :2], denorm[:, 2:]
    pxy = (rois[:, :2] + rois[:, 2:]) * 0.5
    pwh = rois[:, 2:] - rois[:, :2]
    dxy_wh = pwh * dxy
    if add_ctr_clamp:
        dxy_wh = torch.clamp(dxy_wh, max=ctr_clamp, min=-ctr_clamp)
        dwh = torch.clamp(dwh, max=max_ratio)
    else:
        dwh = dwh.clamp(min=-max_ratio, max=max_ratio)
    gxy = pxy + dxy_wh
    gwh = pwh * dwh.exp()
    bboxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
    if max_xyxy is not None:
        bboxes = torch.minimum(bboxes.clamp(min=0), max_xyxy)
    return bboxes


class _DeltaCoder:
    """The settings of a ``DeltaXYWHBBoxCoder`` that decoding needs."""

    def __init__(self, coder, owner: str) -> None:
        from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
        if type(coder) is not DeltaXYWHBBoxCoder:
            raise ConfigError(f'{owner} uses {type(coder).__name__}; only DeltaXYWHBBoxCoder '
                             'is supported')
        self.means = tuple(float(m) for m in coder.means)
        self.stds = tuple(float(s) for s in coder.stds)
        self.clip_border = bool(coder.clip_border)
        self.add_ctr_clamp = bool(coder.add_ctr_clamp)
        self.ctr_clamp = float(coder.ctr_clamp)
        # Neither head passes wh_ratio_clip, so decode() runs with its default.
        wh_ratio_clip = signature(coder.decode).parameters['wh_ratio_clip'].default
        self.max_ratio = float(abs(math.log(wh_ratio_clip)))

    def decode(self, rois: Tensor, deltas: Tensor, max_xyxy: Tensor) -> Tensor:
        return delta_xywh_decode(rois, deltas, self.means, self.stds, self.max_ratio,
                                 max_xyxy if self.clip_border else None, self.add_ctr_clamp,
                                 self.ctr_clamp)

    def as_dict(self) -> dict:
        return dict(means=self.means, stds=self.stds, clip_border=self.clip_border,
                    add_ctr_clamp=self.add_ctr_clamp, ctr_clamp=self.ctr_clamp,
                    max_ratio=self.max_ratio)


def _nms_settings(cfg, where: str) -> dict:
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


def _refuse(kind: str, module, allowed: tuple) -> None:
    if type(module) not in allowed:
        names = ', '.join(t.__name__ for t in allowed)
        raise ConfigError(f'{kind} {type(module).__name__} is not supported (supported: {names})')


def check_supported(model: nn.Module) -> None:
    """Raise a ValueError naming the first part of ``model`` the graph does not implement."""
    from mmdet.models.data_preprocessors import DetDataPreprocessor
    from mmdet.models.dense_heads import RPNHead
    from mmdet.models.detectors import FasterRCNN
    from mmdet.models.roi_heads import StandardRoIHead
    from mmdet.models.roi_heads.bbox_heads import (BBoxHead, ConvFCBBoxHead,
                                                   Shared2FCBBoxHead, Shared4Conv1FCBBoxHead)
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
    from mmdet.models.task_modules.prior_generators import AnchorGenerator
    from mmcv.ops import RoIAlign

    _refuse('detector', model, (FasterRCNN, ))
    _refuse('data preprocessor', model.data_preprocessor, (DetDataPreprocessor, ))
    _refuse('RPN head', model.rpn_head, (RPNHead, ))
    _refuse('RoI head', model.roi_head, (StandardRoIHead, ))
    roi_head, rpn_head = model.roi_head, model.rpn_head
    if roi_head.with_mask:
        raise ConfigError('mask heads are not supported')
    _refuse('RoI extractor', roi_head.bbox_roi_extractor, (SingleRoIExtractor, ))
    _refuse('box head', roi_head.bbox_head,
            (BBoxHead, ConvFCBBoxHead, Shared2FCBBoxHead, Shared4Conv1FCBBoxHead))
    _refuse('anchor generator', rpn_head.prior_generator, (AnchorGenerator, ))
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
            "plain model (its 1x1 convolutions as MatMul ran about 20% slower in ONNX "
            "Runtime than as Conv, and ONNX Runtime folds batch norm itself)")
    extractor = roi_head.bbox_roi_extractor
    for layer in extractor.roi_layers:
        if not (isinstance(layer, TorchvisionRoIAlign)
                or (isinstance(layer, RoIAlign) and layer.pool_mode == 'avg')):
            raise ConfigError(f'RoI layer {layer} is not supported, only average RoIAlign')
    if rpn_head.test_cfg is None or roi_head.test_cfg is None:
        raise ConfigError('the model has no test_cfg.rpn / test_cfg.rcnn')


class FasterRCNNGraph(nn.Module):
    """A Faster R-CNN as one traceable function: resized image in, detections out.

    Input ``image``: float32 ``[1, 3, H, W]``, the image as the config's test
    pipeline leaves it after ``Resize`` (channel order and value range as loaded:
    BGR, 0-255; not normalised, not padded). Outputs ``boxes`` float32 ``[K, 4]``
    (x1, y1, x2, y2 in the input image's pixels, as ``predict(..., rescale=False)``),
    ``scores`` float32 ``[K]`` and ``labels`` int64 ``[K]``, best score first;
    with ``with_proposals`` also the RPN's ``proposals`` ``[P, 4]`` and
    ``proposal_scores`` ``[P]``.

    Every setting comes from ``model``: the data preprocessor, the anchor
    generator, the coders, ``test_cfg.rpn`` and ``test_cfg.rcnn``. The module
    holds ``model``'s parts, not copies.

    Raises:
        ValueError: for a detector, head, coder or test setting the graph does
            not implement (the message names it).
    """

    def __init__(self, model: nn.Module, with_proposals: bool = False) -> None:
        super().__init__()
        check_supported(model)
        roi_head, rpn_head = model.roi_head, model.rpn_head
        bbox_head, extractor = roi_head.bbox_head, roi_head.bbox_roi_extractor
        self.rpn_coder = _DeltaCoder(rpn_head.bbox_coder, 'the RPN head')
        self.rcnn_coder = _DeltaCoder(bbox_head.bbox_coder, 'the box head')
        self.with_proposals = with_proposals
        self.model = model
        # The data preprocessor (mmengine ImgDataPreprocessor.forward, then stack_batch).
        pre = model.data_preprocessor
        self.channel_conversion = bool(pre._channel_conversion)
        self.normalize = bool(pre._enable_normalize)
        self.register_buffer('mean', pre.mean.detach().clone().view(1, -1, 1, 1)
                             if self.normalize else torch.zeros(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', pre.std.detach().clone().view(1, -1, 1, 1)
                             if self.normalize else torch.ones(1, 3, 1, 1), persistent=False)
        self.pad_size_divisor = int(pre.pad_size_divisor)
        self.pad_value = float(pre.pad_value)
        # RPN.
        gen = rpn_head.prior_generator
        self.num_levels = gen.num_levels
        for i, base in enumerate(gen.base_anchors):
            self.register_buffer(f'base_anchors_{i}', base.detach().clone().float(),
                                 persistent=False)
        self.anchor_strides = [(float(w), float(h)) for w, h in gen.strides]
        self.use_sigmoid_rpn = bool(rpn_head.use_sigmoid_cls)
        self.rpn_cls_channels = int(rpn_head.cls_out_channels)
        if self.rpn_cls_channels != (1 if self.use_sigmoid_rpn else 2):
            raise ConfigError(f'an RPN head with {self.rpn_cls_channels} score channels per anchor '
                             'is not supported (1 with sigmoid, 2 with softmax)')
        rpn_cfg = rpn_head.test_cfg
        self.rpn_nms_pre = int(rpn_cfg.get('nms_pre', -1))
        self.rpn_max_per_img = int(rpn_cfg['max_per_img'])
        self.rpn_min_bbox_size = float(rpn_cfg.get('min_bbox_size', -1))
        self.rpn_nms = _nms_settings(rpn_cfg, 'test_cfg.rpn')
        # RoI head.
        self.layout = 'C4' if roi_head.with_shared_head else ('FPN' if model.with_neck
                                                              else 'single-level')
        self.roi_levels = extractor.num_inputs
        self.finest_scale = float(extractor.finest_scale)
        self.roi_layer_cfgs = [
            dict(out_h=int(layer.output_size[0]), out_w=int(layer.output_size[1]),
                 spatial_scale=float(layer.spatial_scale),
                 sampling_ratio=int(layer.sampling_ratio), aligned=bool(layer.aligned))
            for layer in extractor.roi_layers]
        self.roi_out_channels = int(extractor.out_channels)
        self.num_classes = int(bbox_head.num_classes)
        self.reg_class_agnostic = bool(bbox_head.reg_class_agnostic)
        rcnn_cfg = roi_head.test_cfg
        self.score_thr = float(rcnn_cfg['score_thr'])
        self.rcnn_max_per_img = int(rcnn_cfg['max_per_img'])
        self.rcnn_nms = _nms_settings(rcnn_cfg, 'test_cfg.rcnn')

    # -- settings -----------------------------------------------------------------------
    def settings(self) -> dict:
        """Everything the graph was built from, JSON-serialisable (for the metadata)."""
        return dict(
            layout=self.layout,
            preprocess=dict(mean=self.mean.flatten().tolist(), std=self.std.flatten().tolist(),
                            normalize=self.normalize, bgr_to_rgb=self.channel_conversion,
                            pad_size_divisor=self.pad_size_divisor, pad_value=self.pad_value),
            anchors=dict(strides=self.anchor_strides,
                         base_anchors=[b.tolist() for b in self._base_anchors()]),
            rpn=dict(nms_pre=self.rpn_nms_pre, max_per_img=self.rpn_max_per_img,
                     min_bbox_size=self.rpn_min_bbox_size, nms=self.rpn_nms,
                     use_sigmoid_cls=self.use_sigmoid_rpn, coder=self.rpn_coder.as_dict()),
            roi=dict(finest_scale=self.finest_scale, layers=self.roi_layer_cfgs),
            rcnn=dict(score_thr=self.score_thr, max_per_img=self.rcnn_max_per_img,
                      nms=self.rcnn_nms, num_classes=self.num_classes,
                      reg_class_agnostic=self.reg_class_agnostic,
                      coder=self.rcnn_coder.as_dict()))

    def _base_anchors(self) -> list[Tensor]:
        return [getattr(self, f'base_anchors_{i}') for i in range(self.num_levels)]

    # -- steps ----------------------------------------------------------------------------
    def preprocess(self, image: Tensor) -> Tensor:
        """Normalise as the data preprocessor does, then pad bottom/right with ``pad_value``."""
        x = image
        if self.channel_conversion:
            x = x[:, [2, 1, 0], ...]
        if self.normalize:
            x = (x - self.mean) / self.std
        if self.pad_size_divisor > 1:
            hw = _shape(x)[2:]
            d = self.pad_size_divisor
            pad = (d - hw % d) % d
            x = F.pad(x, (0, pad[1], 0, pad[0]), 'constant', self.pad_value)
        return x

    def grid_anchors(self, level: int, feat: Tensor) -> Tensor:
        """``AnchorGenerator.single_level_grid_priors`` for ``feat``'s (dynamic) size."""
        size = _shape(feat)
        stride_w, stride_h = self.anchor_strides[level]
        shift_x = torch.arange(size[3]).to(torch.float32) * stride_w
        shift_y = torch.arange(size[2]).to(torch.float32) * stride_h
        xx = shift_x[None, :] + shift_y[:, None] * 0   # (H, W); exact
        yy = shift_y[:, None] + shift_x[None, :] * 0
        shifts = torch.stack([xx, yy, xx, yy], dim=-1)  # (H, W, 4)
        base = self._base_anchors()[level]
        return (base[None, None, :, :] + shifts[:, :, None, :]).reshape(-1, 4)

    def rpn(self, feats: tuple, max_xyxy: Tensor) -> tuple[Tensor, Tensor]:
        """``RPNHead.predict`` for one image: proposals (P, 4) and scores (P,), best first."""
        cls_scores, bbox_preds = self.model.rpn_head(feats)
        scores_all, deltas_all, anchors_all, levels_all = [], [], [], []
        for level, (cls_score, bbox_pred) in enumerate(zip(cls_scores, bbox_preds)):
            deltas = bbox_pred[0].permute(1, 2, 0).reshape(-1, 4)
            logits = cls_score[0].permute(1, 2, 0).reshape(-1, self.rpn_cls_channels)
            # mmdet: sigmoid, or softmax without the last (background) column.
            scores = logits.sigmoid()[:, 0] if self.use_sigmoid_rpn else logits.softmax(-1)[:, 0]
            anchors = self.grid_anchors(level, cls_score)
            if self.rpn_nms_pre > 0:
                k = _topk_count(_shape(scores)[0], self.rpn_nms_pre)
                scores, inds = scores.topk(k)
                deltas, anchors = deltas[inds], anchors[inds]
            scores_all.append(scores)
            deltas_all.append(deltas)
            anchors_all.append(anchors)
            levels_all.append(torch.full_like(scores, level, dtype=torch.long))
        scores, levels = torch.cat(scores_all), torch.cat(levels_all)
        boxes = self.rpn_coder.decode(torch.cat(anchors_all), torch.cat(deltas_all), max_xyxy)
        if self.rpn_min_bbox_size >= 0:
            w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
            valid = torch.nonzero((w > self.rpn_min_bbox_size) & (h > self.rpn_min_bbox_size))
            valid = valid[:, 0]
            boxes, scores, levels = boxes[valid], scores[valid], levels[valid]
        keep = batched_nms_keep(boxes, scores, levels, **self.rpn_nms)[:self.rpn_max_per_img]
        return boxes[keep], scores[keep]

    def _roi_args(self, level: int) -> tuple:
        cfg = self.roi_layer_cfgs[level]
        return (cfg['out_h'], cfg['out_w'], cfg['spatial_scale'], cfg['sampling_ratio'],
                cfg['aligned'])

    def roi_levels_of(self, boxes: Tensor) -> Tensor:
        """``SingleRoIExtractor.map_roi_levels``: floor(log2(sqrt(area) / finest + 1e-6)),
        clamped to the levels, computed as a count of thresholds passed (exact at powers
        of two, where a float log2 could round either way)."""
        scale = torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
        ratio = scale / self.finest_scale + 1e-6
        levels = torch.zeros_like(ratio, dtype=torch.long)
        for i in range(1, self.roi_levels):
            levels = levels + (ratio >= 2.0**i).long()
        return levels

    def roi_features(self, feats: tuple, boxes: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        """``SingleRoIExtractor.forward`` on image 0's RoIs ``boxes`` (N, 4), level by level.

        Returns the RoI features grouped by level, and ``restore``: for each RoI, its row
        among them (None with one level, where the rows are the RoIs' own order). mmdet
        scatters the features back into RoI order; the graph runs the heads in level order
        and puts their (much smaller) outputs back instead: the same numbers, one copy of
        the features fewer (1x FPN at 300x400, 1 thread: a 3.3 ms ScatterND replaced by
        1.7 ms more Concat, of about 80 ms).
        """
        batch_indices = torch.zeros_like(boxes[:, 0], dtype=torch.long)
        if self.roi_levels == 1:
            return _RoiAlign.apply(feats[0], boxes, batch_indices, *self._roi_args(0)), None
        levels = self.roi_levels_of(boxes)
        outs, order = [], []
        for i in range(self.roi_levels):
            inds = torch.nonzero(levels == i)[:, 0]
            outs.append(_RoiAlign.apply(feats[i], boxes[inds], batch_indices[inds],
                                        *self._roi_args(i)))
            order.append(inds)
        order = torch.cat(order)  # the RoI of each row
        restore = torch.zeros_like(order).scatter(0, order, torch.arange(_shape(order)[0]))
        return torch.cat(outs), restore

    def detections(self, rois: Tensor, cls_score: Tensor, bbox_pred: Tensor,
                   max_xyxy: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``BBoxHead._predict_by_feat_single`` with ``multiclass_nms`` (rescale=False)."""
        scores = F.softmax(cls_score, dim=-1)
        c = self.num_classes
        if self.reg_class_agnostic:
            boxes = self.rcnn_coder.decode(rois, bbox_pred.reshape(-1, 4), max_xyxy)
            boxes = boxes[:, None, :].expand(-1, c, 4).reshape(-1, 4)
        else:
            rois_rep = rois[:, None, :].expand(-1, c, 4).reshape(-1, 4)  # repeat_interleave
            boxes = self.rcnn_coder.decode(rois_rep, bbox_pred.reshape(-1, 4), max_xyxy)
        scores = scores[:, :-1].reshape(-1)
        labels = torch.arange(c)[None, :].expand(_shape(cls_score)[0], c).reshape(-1)
        valid = torch.nonzero(scores > self.score_thr)[:, 0]
        boxes, scores, labels = boxes[valid], scores[valid], labels[valid]
        keep = batched_nms_keep(boxes, scores, labels, **self.rcnn_nms)
        if self.rcnn_max_per_img > 0:
            keep = keep[:self.rcnn_max_per_img]
        return boxes[keep], scores[keep], labels[keep]

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3:
            raise ConfigError(f'the graph takes one image [1, 3, H, W], got {tuple(image.shape)}')
        hw = _shape(image)[2:].to(torch.float32)
        max_xyxy = torch.stack([hw[1], hw[0], hw[1], hw[0]])  # clip to the unpadded image
        feats = self.model.extract_feat(self.preprocess(image))
        proposals, proposal_scores = self.rpn(feats, max_xyxy)
        # One spare RoI (all zeros, dropped after the box head): the heads never see an
        # empty batch, which some ONNX Runtime kernels refuse (a Reshape with -1 of 0
        # elements in the channel shuffle, for one).
        rois = torch.cat([proposals, proposals.new_zeros((1, 4))])
        roi_feats, restore = self.roi_features(feats[:self.roi_levels], rois)
        roi_head = self.model.roi_head
        if roi_head.with_shared_head:
            roi_feats = roi_head.shared_head(roi_feats)
        cls_score, bbox_pred = roi_head.bbox_head(roi_feats)
        if restore is not None:
            cls_score, bbox_pred = cls_score[restore], bbox_pred[restore]
        cls_score, bbox_pred = cls_score[:-1], bbox_pred[:-1]
        outs = self.detections(proposals, cls_score, bbox_pred, max_xyxy)
        if self.with_proposals:
            outs = (*outs, proposals, proposal_scores)
        return outs


def _check_graph(proto, opset: int) -> None:
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


def _test_pipeline(model: nn.Module) -> Optional[list]:
    """The config's test pipeline, when the model carries its config (``init_detector``)."""
    from mmengine.config import ConfigDict
    try:
        pipeline = model.cfg.test_dataloader.dataset.pipeline
    except AttributeError:
        return None
    return [step.to_dict() if isinstance(step, ConfigDict) else dict(step) for step in pipeline]


def detector_metadata(model: nn.Module, graph: 'FasterRCNNGraph', outputs: list) -> dict:
    """The ``metadata_props`` of an exported detector: what a runtime needs to use it."""
    metadata = {
        'shufflenet_det.format': 'faster_rcnn_detections/1',
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
        'shufflenet_det.settings': json.dumps(graph.settings()),
        'shufflenet_det.detector': type(model).__name__,
        'shufflenet_det.layout': graph.layout,
    }
    classes = (getattr(model, 'dataset_meta', None) or {}).get('classes')
    if classes is not None:
        metadata[META_CLASSES] = json.dumps(list(classes))
    pipeline = _test_pipeline(model)
    if pipeline is not None:
        # A Python literal: mmcv's Resize needs its scale as a tuple, which JSON would lose.
        metadata[META_TEST_PIPELINE] = repr(pipeline)
    return metadata


def export_detector_onnx(model: nn.Module, path: str, opset: int = 17,
                         example_hw: tuple[int, int] = (320, 416),
                         with_proposals: bool = False) -> dict:
    """Export a Faster R-CNN (C4 or FPN) to one ONNX file at ``path`` (written atomically).

    The graph is :class:`FasterRCNNGraph`'s: input ``image`` float32 ``[1, 3, H, W]``
    (H and W dynamic; the image after the test pipeline's Resize, BGR 0-255, not
    padded), outputs ``boxes`` ``[K, 4]``, ``scores`` ``[K]``, ``labels`` int64 ``[K]``
    (and ``proposals``, ``proposal_scores`` with ``with_proposals``). The file's
    ``metadata_props`` are :func:`detector_metadata`'s.

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
        export_torchscript_onnx(graph, (example, ), tmp, input_names=[INPUT_NAME],
                                output_names=outputs, dynamic_axes=axes, opset_version=opset,
                                do_constant_folding=True)
        proto = onnx.load(tmp)
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        _check_graph(proto, opset)
        onnx.save(proto, tmp)
    export_s = time.perf_counter() - start
    op_types = dict(Counter(node.op_type for node in proto.graph.node))
    return dict(path=str(path), opset=opset, inputs=[INPUT_NAME], outputs=outputs,
                metadata=metadata, num_nodes=len(proto.graph.node), op_types=op_types,
                export_s=export_s)


__all__ = ['FasterRCNNGraph', 'batched_nms_keep', 'delta_xywh_decode', 'export_detector_onnx']
