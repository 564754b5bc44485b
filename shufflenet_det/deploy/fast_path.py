"""The inference-only fast path of ShuffleNet V1 on CPU.

Measured on 2-core x86 machines with PyTorch 2.11 (``tools/benchmark.py``
reports each step), the plain network loses most of its FLOP advantage to
three things, each fixed here without changing any output beyond float
rounding:

* batch norm after every convolution: folded into the convolutions
  (mmcv's ``fuse_conv_bn``);
* 1x1 convolutions, grouped or not: at batch 1 on one thread PyTorch runs them
  on its slow path, once per group with a copy of each slice. Here they are
  one batched matrix product over a view of the input (no copy in NCHW);
* pooling (the stem's max-pool and every stride-2 unit's average-pool): 7 to
  16 times slower in NCHW than in channels_last. Pools run in channels_last.

Each unit's add and ReLU work in place. The channel shuffle stays the
reshape/transpose form: ATen's ``torch.channel_shuffle`` is about twice as fast
on an NCHW tensor alone, but in the channels_last network it measured slower
(``fast_shuffle=True`` selects it). The training modules are untouched until
:func:`deploy_shufflenet` is called, which converts a model in place and for
inference only.
"""
import torch
from mmcv.cnn import fuse_conv_bn
from torch import Tensor, nn

MEMORY_FORMATS = ('contiguous', 'channels_last')
POINTWISE_IMPLS = ('matmul', 'conv')


class PointwiseMatmul(nn.Module):
    """A 1x1, stride-1 convolution (any ``groups``, with bias) as a batched matmul.

    NCHW input is viewed as (N, g, C/g, HW) and multiplied by the (g, O/g, C/g)
    weights in one call, with no copy; channels_last input takes the (g, NHW, C/g)
    route and returns channels_last.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if conv.kernel_size != (1, 1) or conv.stride != (1, 1) or conv.padding != (0, 0) \
                or conv.dilation != (1, 1):
            raise ValueError(f'PointwiseMatmul needs a 1x1 stride-1 unpadded conv, got {conv}')
        g, out_ch, in_ch = conv.groups, conv.out_channels, conv.in_channels
        self.groups, self.out_channels, self.in_channels = g, out_ch, in_ch
        weight = conv.weight.detach().reshape(g, out_ch // g, in_ch // g)
        self.register_buffer('weight', weight.contiguous())            # (g, O/g, C/g)
        self.register_buffer('weight_t', weight.transpose(1, 2).contiguous())  # (g, C/g, O/g)
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(out_ch)
        self.register_buffer('bias', bias.clone())

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = self.groups
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            rows = x.permute(0, 2, 3, 1).reshape(n * h * w, g, c // g).transpose(0, 1)
            out = torch.baddbmm(self.bias.view(g, 1, -1), rows, self.weight_t)  # (g, NHW, O/g)
            out = out.transpose(0, 1).reshape(n, h, w, self.out_channels)
            return out.permute(0, 3, 1, 2)
        x = x.contiguous().view(n, g, c // g, h * w)
        out = torch.matmul(self.weight, x)  # (N, g, O/g, HW)
        out = out.view(n, self.out_channels, h, w)
        return out.add_(self.bias.view(1, -1, 1, 1))


class ChannelsLastPool(nn.Module):
    """Run a pooling module in channels_last, returning the input's memory format."""

    def __init__(self, pool: nn.Module) -> None:
        super().__init__()
        self.pool = pool

    def forward(self, x: Tensor) -> Tensor:
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            return self.pool(x)
        return self.pool(x.contiguous(memory_format=torch.channels_last)).contiguous()


def aten_channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """The paper's channel shuffle through ATen's native kernel (same permutation)."""
    return torch.channel_shuffle(x, groups)


class TorchvisionRoIAlign(nn.Module):
    """mmcv's ``RoIAlign`` (average mode) computed by ``torchvision.ops.roi_align``.

    Same sampling and alignment, identical outputs; torchvision's CPU kernel ran
    2.5 times faster on 300 RoIs over a 256-channel map.
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


def deploy_detector(model: nn.Module, **kwargs) -> nn.Module:
    """The fast path for a whole MMDetection detector, in place (inference only).

    Every ShuffleNet V1 backbone and shared head gets :func:`deploy_shufflenet`
    (``kwargs`` are passed on), and mmcv's average-mode RoIAlign layers are
    computed by torchvision's kernel.
    """
    from mmcv.ops import RoIAlign

    from ..models.backbones.shufflenet_v1 import ShuffleNetV1
    from ..models.roi_heads.shufflenet_shared_head import ShuffleNetV1SharedHead
    for module in list(model.modules()):
        if isinstance(module, (ShuffleNetV1, ShuffleNetV1SharedHead)):
            module.deploy(**kwargs)
    for name, module in list(model.named_modules()):
        if isinstance(module, RoIAlign) and module.pool_mode == 'avg':
            parent_name, _, attr = name.rpartition('.')
            setattr(model.get_submodule(parent_name) if parent_name else model, attr,
                    TorchvisionRoIAlign(module))
    return model.eval()


def _swap_pointwise(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d) and child.kernel_size == (1, 1) and child.stride == (1, 1):
            setattr(module, name, PointwiseMatmul(child))
        else:
            _swap_pointwise(child)


def deploy_shufflenet(module: nn.Module, memory_format: str = 'channels_last',
                      pointwise: str = 'matmul', fast_shuffle: bool = False,
                      compile: bool = False) -> nn.Module:
    """Convert ``module`` (a backbone, a shared head or anything holding ShuffleUnits)
    to its inference form, in place.

    Args:
        module (nn.Module): The model part to convert. It is put in eval mode.
        memory_format (str): 'contiguous' (NCHW, pools switch to channels_last) or
            'channels_last' (everything channels_last). Default: 'channels_last'.
        pointwise (str): 'matmul' (:class:`PointwiseMatmul`) or 'conv' (PyTorch's
            convolution). Default: 'matmul'.
        fast_shuffle (bool): ATen's ``torch.channel_shuffle`` instead of
            reshape/transpose. Faster on NCHW tensors alone, but in the
            channels_last network the reshape form measured faster. Default: False.
        compile (bool): Also ``torch.compile`` the module's forward. The first call
            then takes tens of seconds (and a new one for each new input shape),
            later ones are faster (``tools/benchmark.py``). Default: False.

    Returns:
        nn.Module: ``module``, converted.
    """
    from ..models.backbones.shufflenet_v1 import ShuffleUnit

    if memory_format not in MEMORY_FORMATS:
        raise ValueError(f'memory_format must be one of {MEMORY_FORMATS}, got {memory_format!r}')
    if pointwise not in POINTWISE_IMPLS:
        raise ValueError(f'pointwise must be one of {POINTWISE_IMPLS}, got {pointwise!r}')
    module.eval()
    fuse_conv_bn(module)
    for name, child in list(module.named_modules()):
        if isinstance(child, nn.MaxPool2d) or (isinstance(child, ShuffleUnit)
                                               and hasattr(child, 'avgpool')):
            target = child if isinstance(child, ShuffleUnit) else None
            if target is not None:
                target.avgpool = ChannelsLastPool(target.avgpool)
            else:
                parent_name, _, attr = name.rpartition('.')
                parent = module.get_submodule(parent_name) if parent_name else module
                setattr(parent, attr, ChannelsLastPool(child))
        if isinstance(child, ShuffleUnit):
            # The merge's sum and ReLU may overwrite the branch output: nothing else reads it.
            child.merge_inplace = True
            child.act = nn.ReLU(inplace=True)
            if fast_shuffle:
                child.shuffle_fn = aten_channel_shuffle
    if pointwise == 'matmul':
        _swap_pointwise(module)
    if memory_format == 'channels_last':
        module.to(memory_format=torch.channels_last)
    module.deploy_memory_format = memory_format
    module.deployed = True
    if compile:
        module.forward = torch.compile(module.forward)
    return module


__all__ = ['ChannelsLastPool', 'PointwiseMatmul', 'TorchvisionRoIAlign', 'aten_channel_shuffle',
           'deploy_detector', 'deploy_shufflenet']
