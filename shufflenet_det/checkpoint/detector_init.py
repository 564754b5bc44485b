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

If the file records ``meta['input_convention']`` (``tools/convert_checkpoint.py``
and this project's pretraining do), the detector's data preprocessor must use the
same mean, std and channel order; otherwise the weights would see inputs they
were not trained on, and the initialiser says so instead of training on.

MMEngine applies a module's non-``Pretrained`` ``init_cfg`` before its children's
``init_weights``; the parts loaded here are marked initialised, so their own
default initialisation does not overwrite them.
"""
from typing import Optional

from mmengine.logging import print_log
from mmengine.registry import WEIGHT_INITIALIZERS
from torch import nn

from ..errors import ConfigError
from ..models.roi_heads import ShuffleNetV1SharedHead
from .io import checkpoint_exists, read_checkpoint
from .pretrained import StrictPretrainedInit, check_shuffle_order, load_parts, select_prefix
from .pretrained_files import allow_missing


def _preprocessor_convention(preprocessor: nn.Module) -> Optional[dict]:
    if not getattr(preprocessor, '_enable_normalize', False):
        return None
    return dict(mean=[round(v, 4) for v in preprocessor.mean.flatten().tolist()],
                std=[round(v, 4) for v in preprocessor.std.flatten().tolist()],
                bgr_to_rgb=bool(getattr(preprocessor, '_channel_conversion', False)))


def check_input_convention(expected: dict, preprocessor: nn.Module, source: str) -> None:
    """Raise if ``preprocessor`` does not normalise images as ``expected`` says.

    Args:
        expected (dict): ``mean``, ``std`` and ``bgr_to_rgb`` as a checkpoint records them.
        preprocessor (nn.Module): The detector's ``DetDataPreprocessor``.
        source (str): The checkpoint, for the message.

    Raises:
        ConfigError: naming both conventions.
    """
    want = dict(mean=[round(float(v), 4) for v in expected['mean']],
                std=[round(float(v), 4) for v in expected['std']],
                bgr_to_rgb=bool(expected['bgr_to_rgb']))
    have = _preprocessor_convention(preprocessor)
    if have is None:
        have = dict(mean=[0.0] * 3, std=[1.0] * 3, bgr_to_rgb=bool(
            getattr(preprocessor, '_channel_conversion', False)))
    if have != want:
        raise ConfigError(
            f'{source} was trained on images normalised with mean={want["mean"]}, '
            f'std={want["std"]}, bgr_to_rgb={want["bgr_to_rgb"]}, but the detector\'s '
            f'data_preprocessor uses mean={have["mean"]}, std={have["std"]}, '
            f'bgr_to_rgb={have["bgr_to_rgb"]}. Set model.data_preprocessor to the '
            'checkpoint\'s values (README, "Pretrained weights").')


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
        map_location (str): Where to load tensors. Default: 'cpu'.
        strict (bool): Refuse a file whose tensors do not match the backbone (and
            C4 head) exactly. False loads the matching tensors only and lists the
            rest in a warning, for users who mean a partial load. Default: True.
    """

    def __init__(self, checkpoint: str, prefix: str = 'backbone.', missing_ok: bool = False,
                 map_location: str = 'cpu', strict: bool = True) -> None:
        super().__init__(checkpoint, prefix, map_location, missing_ok, strict)

    def __call__(self, detector: nn.Module) -> None:
        if not checkpoint_exists(self.checkpoint):
            allow_missing(detector, self.checkpoint, self.missing_ok)
            return
        state, meta = read_checkpoint(self.checkpoint, self.map_location)
        where = f'{self.checkpoint} (prefix {self.prefix!r})'
        state = select_prefix(state, self.prefix, self.checkpoint)
        backbone = detector.backbone
        parts, named = {'': backbone}, {'model.backbone': backbone}
        shared_head = getattr(getattr(detector, 'roi_head', None), 'shared_head', None)
        if isinstance(shared_head, ShuffleNetV1SharedHead):
            parts[f'layers.{backbone.num_stages}.'] = shared_head.stage4
            named['model.roi_head.shared_head'] = shared_head
        check_shuffle_order(meta, named, where)
        if 'input_convention' in meta:
            check_input_convention(meta['input_convention'], detector.data_preprocessor, where)
        loaded = load_parts(parts, state, where, strict=self.strict)
        for module in (backbone, shared_head if len(parts) > 1 else None):
            if module is not None:
                module._is_init = True
        print_log(f'loaded {loaded} tensors from {where} into '
                  + ' and '.join(('backbone', 'roi_head.shared_head')[:len(parts)]),
                  logger='current')

    def __repr__(self) -> str:
        return f'ShuffleNetPretrained(checkpoint={self.checkpoint!r}, prefix={self.prefix!r})'
