"""The two detector steps that ``torch.onnx.export`` writes by hand, and tracing helpers.

Each operation runs mmcv's own kernel in PyTorch (what mmdet runs) and writes
standard ONNX operators when traced (``symbolic``), so that the exported graph
stays in the default ONNX domain:

- :func:`batched_nms_keep`: mmcv's ``batched_nms`` (``type='nms'``) as mmcv's
  class-offset trick and one ``NonMaxSuppression``;
- :class:`RoiAlignOp`: mmcv's ``roi_align`` as ``RoiAlign`` (opset 16+ for its
  ``coordinate_transformation_mode``).
"""
import sys

import torch
from torch import Tensor


class BatchedNMSOp(torch.autograd.Function):
    """mmcv's ``batched_nms`` with ``type='nms'``: kept indices, best score first.

    Eager: mmcv's ``batched_nms`` itself (an empty result for no boxes, where mmdet
    does not call it). ONNX: mmcv's class-offset trick, as mmcv computes it: boxes of
    class ``i`` moved by ``i * (max coordinate + 1)``, so that boxes of different
    classes never overlap, then one ``NonMaxSuppression`` (one batch, one class). Both
    suppress a box whose IoU with a kept one is *greater* than the threshold.
    ``ReduceMax`` of no boxes is -inf in ONNX Runtime; the offsets are then empty too.
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


class RoiAlignOp(torch.autograd.Function):
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


def shape_of(x: Tensor) -> Tensor:
    """``x``'s shape as an int64 tensor (an ONNX ``Shape`` when tracing)."""
    return torch._shape_as_tensor(x)


def topk_count(n: Tensor, k: int) -> Tensor:
    """``min(k, n)`` that stays dynamic in a trace (ONNX TopK refuses k > n)."""
    return torch.minimum(n, torch.tensor(k, dtype=n.dtype))


def batched_nms_keep(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float,
                     class_agnostic: bool = False, split_thr: int = 10000) -> Tensor:
    """mmcv's ``batched_nms`` (``type='nms'``): indices of the kept boxes, best first;
    traced as standard ONNX operators (:class:`BatchedNMSOp`)."""
    return BatchedNMSOp.apply(boxes, scores, idxs, float(iou_threshold), bool(class_agnostic),
                              int(split_thr))
