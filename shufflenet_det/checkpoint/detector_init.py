"""Initialise a detector from an ImageNet ShuffleNet checkpoint, strictly and in one place.

Set on the detector (not the backbone)::

    model = dict(type='FasterRCNN', init_cfg=dict(
        type='ShuffleNetPretrained', checkpoint='checkpoints/x.pth'), ...)

The checkpoint's ``backbone.*`` tensors go to the backbone. In the paper's C4
layout, where the backbone stops after Stage 3 and
:class:`~shufflenet_det.models.ShuffleNetV1SharedHead` runs Stage 4 per RoI,
``backbone.layers.2.*`` go to that head instead. Both parts are checked together
before anything is copied: every parameter of the backbone and the head must be
in the file, and every ``backbone.*`` tensor of the file must be used.

The detector's data preprocessor must use the mean, std and channel order the
weights were trained with; otherwise they would see inputs they were not trained
on, and the initialiser says so instead of training on. The file's recorded
convention, one stated in the ``init_cfg``, or the layout of OpenMMLab's release
tells which (:mod:`~shufflenet_det.checkpoint.input_convention`); a file that gives
none is refused. A missing file is an error that says how to get it.

MMEngine applies a module's non-``Pretrained`` ``init_cfg`` before its children's
``init_weights``; the parts loaded here are marked initialised, so their own
default initialisation does not overwrite them.
"""
from typing import Union

from mmengine.logging import print_log
from mmengine.registry import WEIGHT_INITIALIZERS
from torch import nn

from ..models.roi_heads import ShuffleNetV1SharedHead
from .files import checkpoint_exists, read_checkpoint
from .input_convention import (check_input_convention, parse_input_convention,
                               resolve_input_convention)
from .pretrained import StrictPretrainedInit, check_shuffle_order, load_parts, select_prefix
from .pretrained_files import raise_unless_missing_ok

__all__ = ['ShuffleNetPretrainedInit', 'check_input_convention']


@WEIGHT_INITIALIZERS.register_module(name='ShuffleNetPretrained')
class ShuffleNetPretrainedInit(StrictPretrainedInit):
    """Load an ImageNet ShuffleNet V1 checkpoint into a detector's backbone (and C4 head).

    Args:
        checkpoint (str): Path or URL of a classifier or backbone checkpoint.
        prefix (str): Key prefix of the backbone in the file. Default: 'backbone.'.
        missing_ok (bool): If the local file does not exist, log a warning and
            leave the detector to its default initialisation; refused if a part of
            the detector keeps BN statistics (``norm_eval``) or stages frozen, which
            would stay random. Default: False: a missing file is an error saying how
            to get it (``tools/train.py --from-scratch`` trains without it).
        input_convention (str | dict, optional): How the weights expect images,
            for files that do not record it: ``'megvii'`` (BGR 0-255, not
            normalised), ``'openmmlab'`` (RGB, ImageNet mean and std) or
            ``dict(mean=[...], std=[...], bgr_to_rgb=...)``. Checked against the
            data preprocessor. Default: None (recorded, or told from the layout).
        map_location (str): Where to load tensors. Default: 'cpu'.
        strict (bool): Refuse a file whose tensors do not match the backbone (and
            C4 head) exactly. False loads the matching tensors only and lists the
            rest in a warning, for users who mean a partial load. Default: True.
    """

    def __init__(self, checkpoint: str, prefix: str = 'backbone.', missing_ok: bool = False,
                 map_location: str = 'cpu', strict: bool = True,
                 input_convention: Union[None, str, dict] = None) -> None:
        super().__init__(checkpoint, prefix, map_location, missing_ok, strict)
        self.input_convention = parse_input_convention(input_convention)

    def __call__(self, detector: nn.Module) -> None:
        if not checkpoint_exists(self.checkpoint):
            raise_unless_missing_ok(detector, self.checkpoint, self.missing_ok)
            return
        whole, meta = read_checkpoint(self.checkpoint, self.map_location)
        where = f'{self.checkpoint} (prefix {self.prefix!r})'
        state = select_prefix(whole, self.prefix, self.checkpoint)
        backbone = detector.backbone
        parts, named = {'': backbone}, {'model.backbone': backbone}
        shared_head = getattr(getattr(detector, 'roi_head', None), 'shared_head', None)
        if isinstance(shared_head, ShuffleNetV1SharedHead):
            parts[f'layers.{backbone.num_stages}.'] = shared_head.stage4
            named['model.roi_head.shared_head'] = shared_head
        check_shuffle_order(meta, named, where)
        convention, origin = resolve_input_convention(meta, whole, self.input_convention, where)
        check_input_convention(convention, detector.data_preprocessor, where, origin)
        loaded = load_parts(parts, state, where, strict=self.strict)
        for module in (backbone, shared_head if len(parts) > 1 else None):
            if module is not None:
                module._is_init = True
        print_log(f'loaded {loaded} tensors from {where} into '
                  + ' and '.join(('backbone', 'roi_head.shared_head')[:len(parts)]),
                  logger='current')

    def __repr__(self) -> str:
        return f'ShuffleNetPretrained(checkpoint={self.checkpoint!r}, prefix={self.prefix!r})'
