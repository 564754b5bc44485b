"""The CPU inference fast path of a whole detector or classifier.

Each ShuffleNet module converts itself (``switch_to_deploy``: BN folded into the
convolutions, pointwise convolutions as batched matmuls, pools in channels_last,
in-place merges; see ``shufflenet_det/models/layers/shuffle_unit.py``). This file
finds those modules in any model, as timm's ``reparameterize_model`` does, and
adds what belongs to the detector rather than to ShuffleNet: mmcv's RoIAlign
computed by torchvision's faster CPU kernel. Outputs change only by float
rounding.
"""
from mmcv.ops import RoIAlign
from torch import Tensor, nn


class TorchvisionRoIAlign(nn.Module):
    """mmcv's ``RoIAlign`` (average mode) computed by ``torchvision.ops.roi_align``.

    Same sampling and alignment, identical outputs; torchvision's CPU kernel is the
    faster one (timed in docs/deploy.md, The PyTorch fast path).

    Args:
        layer (nn.Module): The mmcv ``RoIAlign`` to replace.
    """

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        if getattr(layer, 'pool_mode', 'avg') != 'avg':
            raise ValueError('only average-mode RoIAlign has a torchvision equivalent')
        self.output_size = tuple(layer.output_size)
        self.spatial_scale = float(layer.spatial_scale)
        self.sampling_ratio = int(layer.sampling_ratio)
        self.aligned = bool(layer.aligned)

    def forward(self, features: Tensor, rois: Tensor) -> Tensor:
        from torchvision.ops import roi_align
        return roi_align(features, rois, self.output_size, self.spatial_scale,
                         self.sampling_ratio, self.aligned)


def switch_model_to_deploy(model: nn.Module, **kwargs) -> int:
    """Call ``switch_to_deploy(**kwargs)`` on every outermost module of ``model`` that has one.

    A module that converts itself also converts its children, so the search does not
    descend into it.

    Returns:
        int: How many modules were converted.
    """
    converted = 0
    for child in model.children():
        if callable(getattr(child, 'switch_to_deploy', None)):
            child.switch_to_deploy(**kwargs)
            converted += 1
        else:
            converted += switch_model_to_deploy(child, **kwargs)
    return converted


def deploy_detector(model: nn.Module, **kwargs) -> nn.Module:
    """The fast path for a whole MMDetection detector, in place (inference only).

    Every ShuffleNet V1 backbone and shared head switches to deploy (``kwargs`` are
    passed on: ``memory_format``, ``pointwise``, ``fast_shuffle``, ``merge_inplace``,
    ``compile``), and mmcv's average-mode RoIAlign layers are computed by
    torchvision's kernel.

    Returns:
        nn.Module: ``model``, in eval mode.
    """
    model.eval()
    switch_model_to_deploy(model, **kwargs)
    for name, module in list(model.named_modules()):
        if isinstance(module, RoIAlign) and module.pool_mode == 'avg':
            parent_name, _, attr = name.rpartition('.')
            setattr(model.get_submodule(parent_name) if parent_name else model, attr,
                    TorchvisionRoIAlign(module))
    return model
