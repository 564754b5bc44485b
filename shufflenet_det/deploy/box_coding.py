"""mmdet's ``DeltaXYWHBBoxCoder.decode`` in traceable operations, with the coder's settings.

The detector graph decodes twice: the RPN's deltas against the anchors and the box
head's deltas against the RoIs. Both follow mmdet 3.3's ``delta2bbox`` in the same
order of float operations, and clip to the unpadded image whose ``[W, H, W, H]``
the graph reads from the input's (dynamic) shape.
"""
import math
from inspect import signature
from typing import Optional

import torch
from torch import Tensor

from ..errors import ConfigError


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


class DeltaCoder:
    """The settings of a ``DeltaXYWHBBoxCoder`` that decoding needs.

    Args:
        coder: The head's ``bbox_coder``.
        owner (str): The head, for the error message ("the RPN head").

    Raises:
        ConfigError: ``coder`` is not a ``DeltaXYWHBBoxCoder``.
    """

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
