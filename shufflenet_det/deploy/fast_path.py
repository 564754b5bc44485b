"""The PyTorch CPU fast path of a whole detector or classifier (inference only).

Each ShuffleNet module converts itself (``switch_to_deploy``, see
``shufflenet_det/models/layers/shuffle_unit.py``); this file finds those modules in any
model and computes mmcv's RoIAlign with torchvision's faster CPU kernel. Outputs change
only by float rounding.
"""
from mmcv.ops import RoIAlign
from torch import Tensor, nn


class TorchvisionRoIAlign(nn.Module):
    """mmcv's average-mode ``RoIAlign`` (``layer``) computed by ``torchvision.ops.roi_align``:
    same sampling and alignment, identical outputs."""

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
    """Call ``switch_to_deploy(**kwargs)`` on every outermost module of ``model`` that has
    one (it converts its children too); returns how many were converted."""
    converted = 0
    for child in model.children():
        if callable(getattr(child, 'switch_to_deploy', None)):
            child.switch_to_deploy(**kwargs)
            converted += 1
        else:
            converted += switch_model_to_deploy(child, **kwargs)
    return converted


def deploy_detector(model: nn.Module, **kwargs) -> nn.Module:
    """The fast path for a whole MMDetection detector, in place; returns ``model`` in eval mode.

    Every ShuffleNet V1 backbone and shared head switches to deploy (``kwargs`` are passed
    on: ``memory_format``, ``pointwise``, ``fast_shuffle``, ``merge_inplace``,
    ``compile``), and mmcv's average-mode RoIAlign layers become
    :class:`TorchvisionRoIAlign`.
    """
    model.eval()
    switch_model_to_deploy(model, **kwargs)
    for name, module in list(model.named_modules()):
        if isinstance(module, RoIAlign) and module.pool_mode == 'avg':
            parent, _, attr = name.rpartition('.')
            setattr(model.get_submodule(parent), attr, TorchvisionRoIAlign(module))
    return model
