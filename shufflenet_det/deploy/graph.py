"""A Faster R-CNN (C4 or FPN) as one traceable module whose ONNX graph uses the default domain only.

Every step follows mmdet 3.3 / mmcv 2.1 in the same order of float operations; mmcv's
``batched_nms`` and ``roi_align`` run as themselves in PyTorch and are written as ONNX
``NonMaxSuppression`` and ``RoiAlign``. ONNX Runtime can still differ in the order of boxes
of exactly equal scores and by float rounding (a comparison exactly on a threshold).
"""
import math
import sys
from inspect import signature

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..models.layers import PointwiseMatmul
from .fast_path import TorchvisionRoIAlign

_shape = torch._shape_as_tensor  # a tensor, so sizes stay dynamic in the trace


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


def _require(kind: str, module, *allowed) -> None:
    if type(module) not in allowed:
        names = ', '.join(t.__name__ for t in allowed)
        raise ConfigError(f'{kind} {type(module).__name__} is not supported (supported: {names})')


def check_supported(model: nn.Module) -> None:
    """Raise a ConfigError (a ValueError) naming the first part of ``model`` the graph does
    not implement, so that an export never writes a graph that computes something else."""
    from mmcv.ops import RoIAlign
    from mmdet.models.data_preprocessors import DetDataPreprocessor
    from mmdet.models.dense_heads import RPNHead
    from mmdet.models.detectors import FasterRCNN
    from mmdet.models.roi_heads import StandardRoIHead
    from mmdet.models.roi_heads.bbox_heads import (BBoxHead, ConvFCBBoxHead,
                                                   Shared2FCBBoxHead, Shared4Conv1FCBBoxHead)
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
    from mmdet.models.task_modules.prior_generators import AnchorGenerator

    _require('detector', model, FasterRCNN)
    _require('data preprocessor', model.data_preprocessor, DetDataPreprocessor)
    _require('RPN head', model.rpn_head, RPNHead)
    _require('RoI head', model.roi_head, StandardRoIHead)
    roi_head, rpn_head = model.roi_head, model.rpn_head
    bbox_head = roi_head.bbox_head
    if roi_head.with_mask:
        raise ConfigError('mask heads are not supported')
    _require('RoI extractor', roi_head.bbox_roi_extractor, SingleRoIExtractor)
    _require('box head', bbox_head, BBoxHead, ConvFCBBoxHead, Shared2FCBBoxHead,
             Shared4Conv1FCBBoxHead)
    _require('anchor generator', rpn_head.prior_generator, AnchorGenerator)
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
    for layer in roi_head.bbox_roi_extractor.roi_layers:
        if not (isinstance(layer, TorchvisionRoIAlign)
                or (isinstance(layer, RoIAlign) and layer.pool_mode == 'avg')):
            raise ConfigError(f'RoI layer {layer} is not supported, only average RoIAlign')
    if rpn_head.test_cfg is None or roi_head.test_cfg is None:
        raise ConfigError('the model has no test_cfg.rpn / test_cfg.rcnn')


class DeltaCoder:
    """A ``DeltaXYWHBBoxCoder``'s ``decode`` (mmdet's ``delta2bbox``) in traceable operations.

    Args:
        coder: The head's ``bbox_coder``.
        owner (str): The head, for the error message ("the RPN head").
    """

    def __init__(self, coder, owner: str) -> None:
        from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
        if type(coder) is not DeltaXYWHBBoxCoder:
            raise ConfigError(f'{owner} uses {type(coder).__name__}; only DeltaXYWHBBoxCoder '
                              'is supported')
        self.means, self.stds = tuple(map(float, coder.means)), tuple(map(float, coder.stds))
        self.clip_border, self.add_ctr_clamp = bool(coder.clip_border), bool(coder.add_ctr_clamp)
        self.ctr_clamp = float(coder.ctr_clamp)
        # Neither head passes wh_ratio_clip, so decode() runs with its default.
        wh_ratio_clip = signature(coder.decode).parameters['wh_ratio_clip'].default
        self.max_ratio = abs(math.log(wh_ratio_clip))

    def decode(self, rois: Tensor, deltas: Tensor, max_xyxy: Tensor) -> Tensor:
        """Boxes from (N, 4) ``rois`` and ``deltas``, clipped to ``max_xyxy`` ([W, H, W, H])."""
        denorm = deltas * deltas.new_tensor(self.stds) + deltas.new_tensor(self.means)
        dxy, dwh = denorm[:, :2], denorm[:, 2:]
        pxy = (rois[:, :2] + rois[:, 2:]) * 0.5
        pwh = rois[:, 2:] - rois[:, :2]
        dxy_wh = pwh * dxy
        if self.add_ctr_clamp:
            dxy_wh = torch.clamp(dxy_wh, max=self.ctr_clamp, min=-self.ctr_clamp)
            dwh = torch.clamp(dwh, max=self.max_ratio)
        else:
            dwh = dwh.clamp(min=-self.max_ratio, max=self.max_ratio)
        gxy = pxy + dxy_wh
        gwh = pwh * dwh.exp()
        boxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
        return torch.minimum(boxes.clamp(min=0), max_xyxy) if self.clip_border else boxes


class BatchedNMSOp(torch.autograd.Function):
    """mmcv's ``batched_nms`` (``type='nms'``): kept indices, best first. ONNX: mmcv's
    class-offset trick (boxes of class ``i`` moved by ``i * (max coordinate + 1)``), then one
    ``NonMaxSuppression``; both drop boxes of IoU *greater* than the threshold."""

    @staticmethod
    def forward(ctx, boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float,
                class_agnostic: bool, split_thr: int) -> Tensor:
        if boxes.numel() == 0:  # mmdet does not call batched_nms then
            return boxes.new_zeros((0, ), dtype=torch.long)
        from mmcv.ops import batched_nms
        return batched_nms(boxes, scores, idxs, dict(
            type='nms', iou_threshold=iou_threshold, class_agnostic=class_agnostic,
            split_thr=split_thr))[1]

    @staticmethod
    def symbolic(g, boxes, scores, idxs, iou_threshold, class_agnostic, split_thr):
        from onnx import TensorProto

        def const(value, dtype):
            return g.op('Constant', value_t=torch.tensor(value, dtype=dtype))

        if not class_agnostic:  # ReduceMax of no boxes is -inf; the offsets are empty then too
            scale = g.op('Add', g.op('ReduceMax', boxes, keepdims_i=0), const(1.0, torch.float))
            offsets = g.op('Mul', g.op('Cast', idxs, to_i=TensorProto.FLOAT), scale)
            boxes = g.op('Add', boxes, g.op('Unsqueeze', offsets, const([1], torch.long)))
        boxes3 = g.op('Unsqueeze', boxes, const([0], torch.long))          # [1, N, 4]
        scores3 = g.op('Unsqueeze', scores, const([0, 1], torch.long))     # [1, 1, N]
        selected = g.op('NonMaxSuppression', boxes3, scores3,
                        const([sys.maxsize], torch.long), const([iou_threshold], torch.float))
        return g.op('Gather', selected, const(2, torch.long), axis_i=1)    # [K, 3] -> [K]


def batched_nms_keep(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float,
                     class_agnostic: bool = False, split_thr: int = 10000) -> Tensor:
    """mmcv's ``batched_nms`` (``type='nms'``): indices of the kept boxes, best first."""
    return BatchedNMSOp.apply(boxes, scores, idxs, float(iou_threshold), bool(class_agnostic),
                              int(split_thr))


class RoiAlignOp(torch.autograd.Function):
    """mmcv's average ``roi_align`` of image 0's feature map. ONNX: ``RoiAlign``, 'half_pixel'
    for mmcv's ``aligned=True``, 'output_half_pixel' for ``aligned=False`` (opset 16+)."""

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


class FasterRCNNGraph(nn.Module):
    """A Faster R-CNN as one traceable function: resized image in, detections out.

    Input ``image``: float32 ``[1, 3, H, W]`` after the test pipeline's ``Resize`` (BGR,
    0-255, not padded). Outputs ``boxes`` ``[K, 4]`` in its pixels, ``scores`` ``[K]``, int64
    ``labels`` ``[K]``, best first (and ``proposals``, ``proposal_scores`` with
    ``with_proposals``). Every setting comes from ``model``, whose parts the module holds.

    Raises:
        ValueError: naming the part of ``model`` the graph does not implement.
    """

    def __init__(self, model: nn.Module, with_proposals: bool = False) -> None:
        super().__init__()
        check_supported(model)
        roi_head, rpn_head = model.roi_head, model.rpn_head
        bbox_head, extractor = roi_head.bbox_head, roi_head.bbox_roi_extractor
        self.model, self.with_proposals = model, with_proposals
        self.rpn_coder = DeltaCoder(rpn_head.bbox_coder, 'the RPN head')
        self.rcnn_coder = DeltaCoder(bbox_head.bbox_coder, 'the box head')
        pre = model.data_preprocessor  # mmengine's ImgDataPreprocessor.forward, then stack_batch
        self.channel_conversion = bool(pre._channel_conversion)
        self.normalize = bool(pre._enable_normalize)
        if self.normalize:
            self.mean = pre.mean.detach().clone().view(1, -1, 1, 1)
            self.std = pre.std.detach().clone().view(1, -1, 1, 1)
        self.pad_size_divisor, self.pad_value = int(pre.pad_size_divisor), float(pre.pad_value)
        gen = rpn_head.prior_generator
        self.base_anchors = [base.detach().clone().float() for base in gen.base_anchors]
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
        self.layout = 'C4' if roi_head.with_shared_head else ('FPN' if model.with_neck
                                                              else 'single-level')
        self.roi_levels = extractor.num_inputs
        self.finest_scale = float(extractor.finest_scale)
        self.roi_args = [(int(layer.output_size[0]), int(layer.output_size[1]),
                          float(layer.spatial_scale), int(layer.sampling_ratio),
                          bool(layer.aligned)) for layer in extractor.roi_layers]
        self.num_classes = int(bbox_head.num_classes)
        self.reg_class_agnostic = bool(bbox_head.reg_class_agnostic)
        rcnn_cfg = roi_head.test_cfg
        self.score_thr = float(rcnn_cfg['score_thr'])
        self.rcnn_max_per_img = int(rcnn_cfg['max_per_img'])
        self.rcnn_nms = nms_settings(rcnn_cfg, 'test_cfg.rcnn')

    def preprocess(self, image: Tensor) -> Tensor:
        """Normalise as the data preprocessor does, then pad bottom/right with ``pad_value``."""
        x = image[:, [2, 1, 0], ...] if self.channel_conversion else image
        if self.normalize:
            x = (x - self.mean) / self.std
        if self.pad_size_divisor > 1:
            d = self.pad_size_divisor
            pad = (d - _shape(x)[2:] % d) % d
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
        return (self.base_anchors[level][None, None] + shifts[:, :, None, :]).reshape(-1, 4)

    def rpn(self, feats: tuple, max_xyxy: Tensor) -> tuple[Tensor, Tensor]:
        """``RPNHead.predict`` for one image: proposals (P, 4) and scores (P,), best first."""
        scores_all, deltas_all, anchors_all, levels_all = [], [], [], []
        for level, (cls_score, bbox_pred) in enumerate(zip(*self.model.rpn_head(feats))):
            deltas = bbox_pred[0].permute(1, 2, 0).reshape(-1, 4)
            logits = cls_score[0].permute(1, 2, 0).reshape(-1, self.rpn_cls_channels)
            # mmdet: sigmoid, or softmax without the last (background) column.
            scores = logits.sigmoid()[:, 0] if self.use_sigmoid_rpn else logits.softmax(-1)[:, 0]
            anchors = self.grid_anchors(level, cls_score)
            if self.rpn_nms_pre > 0:  # ONNX TopK refuses k > n
                n = _shape(scores)[0]
                scores, inds = scores.topk(torch.minimum(n, torch.tensor(self.rpn_nms_pre)))
                deltas, anchors = deltas[inds], anchors[inds]
            scores_all.append(scores)
            deltas_all.append(deltas)
            anchors_all.append(anchors)
            levels_all.append(torch.full_like(scores, level, dtype=torch.long))
        scores, levels = torch.cat(scores_all), torch.cat(levels_all)
        boxes = self.rpn_coder.decode(torch.cat(anchors_all), torch.cat(deltas_all), max_xyxy)
        if self.rpn_min_bbox_size >= 0:
            w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
            valid = torch.nonzero((w > self.rpn_min_bbox_size) & (h > self.rpn_min_bbox_size))[:, 0]
            boxes, scores, levels = boxes[valid], scores[valid], levels[valid]
        keep = batched_nms_keep(boxes, scores, levels, **self.rpn_nms)[:self.rpn_max_per_img]
        return boxes[keep], scores[keep]

    def roi_levels_of(self, boxes: Tensor) -> Tensor:
        """``SingleRoIExtractor.map_roi_levels`` as a count of thresholds passed (exact at
        powers of two, where a float log2 could round either way)."""
        scale = torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
        ratio = scale / self.finest_scale + 1e-6
        levels = torch.zeros_like(ratio, dtype=torch.long)
        for i in range(1, self.roi_levels):
            levels = levels + (ratio >= 2.0**i).long()
        return levels

    def roi_features(self, feats: tuple, boxes: Tensor) -> tuple[Tensor, Tensor | None]:
        """``SingleRoIExtractor.forward`` on image 0's RoIs ``boxes`` (N, 4), level by level.

        Returns the features grouped by level and, with several levels, each RoI's row
        among them: the heads run in level order and their (much smaller) outputs are put
        back in RoI order, rather than the features as mmdet does; the same numbers.
        """
        batch_indices = torch.zeros_like(boxes[:, 0], dtype=torch.long)
        if self.roi_levels == 1:
            return RoiAlignOp.apply(feats[0], boxes, batch_indices, *self.roi_args[0]), None
        levels = self.roi_levels_of(boxes)
        outs, order = [], []
        for i in range(self.roi_levels):
            inds = torch.nonzero(levels == i)[:, 0]
            outs.append(RoiAlignOp.apply(feats[i], boxes[inds], batch_indices[inds],
                                        *self.roi_args[i]))
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
        outs = self.detections(proposals, cls_score[:-1], bbox_pred[:-1], max_xyxy)
        return (*outs, proposals, proposal_scores) if self.with_proposals else outs
