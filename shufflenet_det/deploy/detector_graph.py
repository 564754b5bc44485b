"""A whole Faster R-CNN detector as one standard ONNX graph, checked against mmdet.

:class:`FasterRCNNGraph` wraps an MMDetection ``FasterRCNN`` (C4 with a shared
head, or FPN) in a traceable module that goes from the resized image to the
final detections: the data preprocessor's normalisation and padding, backbone
and neck, the RPN (anchors for the dynamic feature sizes, per-level top-k,
decoding, small-box filter, NMS), RoIAlign with mmdet's RoI-to-level mapping,
the shared head and box head, and the per-class post-processing
(``multiclass_nms``).
:func:`~shufflenet_det.deploy.detector_export.export_detector_onnx` writes it with
the TorchScript exporter (``legacy_onnx_exporter.py``); every node is in the default
ONNX domain (``RoiAlign`` and ``NonMaxSuppression`` included, ``onnx_symbolic.py``),
so plain ONNX Runtime runs it, without MMDeploy or custom operators.

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
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .box_coding import DeltaCoder
from .export_support import check_supported, nms_settings
from .onnx_symbolic import RoiAlignOp, batched_nms_keep, shape_of, topk_count


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
        self.rpn_coder = DeltaCoder(rpn_head.bbox_coder, 'the RPN head')
        self.rcnn_coder = DeltaCoder(bbox_head.bbox_coder, 'the box head')
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
        self.rpn_nms = nms_settings(rpn_cfg, 'test_cfg.rpn')
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
        self.rcnn_nms = nms_settings(rcnn_cfg, 'test_cfg.rcnn')

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
            hw = shape_of(x)[2:]
            d = self.pad_size_divisor
            pad = (d - hw % d) % d
            x = F.pad(x, (0, pad[1], 0, pad[0]), 'constant', self.pad_value)
        return x

    def grid_anchors(self, level: int, feat: Tensor) -> Tensor:
        """``AnchorGenerator.single_level_grid_priors`` for ``feat``'s (dynamic) size."""
        size = shape_of(feat)
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
                k = topk_count(shape_of(scores)[0], self.rpn_nms_pre)
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
        the features fewer, so a ScatterND of the RoI features becomes a cheaper Concat of
        the head outputs (timed in docs/benchmarks.md, Notes on ONNX Runtime).
        """
        batch_indices = torch.zeros_like(boxes[:, 0], dtype=torch.long)
        if self.roi_levels == 1:
            return RoiAlignOp.apply(feats[0], boxes, batch_indices, *self._roi_args(0)), None
        levels = self.roi_levels_of(boxes)
        outs, order = [], []
        for i in range(self.roi_levels):
            inds = torch.nonzero(levels == i)[:, 0]
            outs.append(RoiAlignOp.apply(feats[i], boxes[inds], batch_indices[inds],
                                        *self._roi_args(i)))
            order.append(inds)
        order = torch.cat(order)  # the RoI of each row
        restore = torch.zeros_like(order).scatter(0, order, torch.arange(shape_of(order)[0]))
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
        labels = torch.arange(c)[None, :].expand(shape_of(cls_score)[0], c).reshape(-1)
        valid = torch.nonzero(scores > self.score_thr)[:, 0]
        boxes, scores, labels = boxes[valid], scores[valid], labels[valid]
        keep = batched_nms_keep(boxes, scores, labels, **self.rcnn_nms)
        if self.rcnn_max_per_img > 0:
            keep = keep[:self.rcnn_max_per_img]
        return boxes[keep], scores[keep], labels[keep]

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3:
            raise ConfigError(f'the graph takes one image [1, 3, H, W], got {tuple(image.shape)}')
        hw = shape_of(image)[2:].to(torch.float32)
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
