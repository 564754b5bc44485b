"""Modules that ``switch_to_deploy`` puts in place of PyTorch's for CPU inference.

At batch 1 PyTorch runs a grouped 1x1 convolution once per group, copying each slice;
one batched ``matmul`` over a view does the same without copies. CPU pooling kernels
are faster in channels_last, so pools run in it whatever the model's memory format
(both measured by ``tools/benchmark.py backbone --ablation``, docs/deploy.md).
"""
import torch
from torch import Tensor, nn


def _is_channels_last(x: Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


class PointwiseMatmul(nn.Module):
    """A 1x1, stride-1 convolution (any ``groups``, with bias) as a batched matmul.

    Args:
        conv (nn.Conv2d): The convolution to replace; its weights are copied.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if not is_pointwise(conv):
            raise ValueError(f'PointwiseMatmul needs a 1x1 stride-1 unpadded conv, got {conv}')
        g, out_ch, in_ch = conv.groups, conv.out_channels, conv.in_channels
        self.groups, self.out_channels, self.in_channels = g, out_ch, in_ch
        weight = conv.weight.detach().reshape(g, out_ch // g, in_ch // g)
        self.register_buffer('weight', weight.contiguous())
        self.register_buffer('weight_t', weight.transpose(1, 2).contiguous())
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(out_ch)
        self.register_buffer('bias', bias.clone())

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = self.groups
        if _is_channels_last(x):  # (g, NHW, C/g) rows, returned channels_last
            rows = x.permute(0, 2, 3, 1).reshape(n * h * w, g, c // g).transpose(0, 1)
            out = torch.baddbmm(self.bias.view(g, 1, -1), rows, self.weight_t)
            return out.transpose(0, 1).reshape(n, h, w, self.out_channels).permute(0, 3, 1, 2)
        out = torch.matmul(self.weight, x.contiguous().view(n, g, c // g, h * w))
        return out.view(n, self.out_channels, h, w).add_(self.bias.view(1, -1, 1, 1))


def is_pointwise(module: nn.Module) -> bool:
    """Whether ``module`` is a 1x1, stride-1, unpadded, undilated ``nn.Conv2d``."""
    return isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) \
        and module.stride == (1, 1) and module.padding == (0, 0) and module.dilation == (1, 1)


def replace_pointwise_convs(module: nn.Module) -> int:
    """Replace every pointwise ``nn.Conv2d`` inside ``module``; returns how many."""
    replaced = 0
    for name, child in module.named_children():
        if is_pointwise(child):
            setattr(module, name, PointwiseMatmul(child))
            replaced += 1
        else:
            replaced += replace_pointwise_convs(child)
    return replaced


class ChannelsLastPool(nn.Module):
    """Run ``pool`` in channels_last, returning the input's memory format."""

    def __init__(self, pool: nn.Module) -> None:
        super().__init__()
        self.pool = pool

    def forward(self, x: Tensor) -> Tensor:
        if _is_channels_last(x):
            return self.pool(x)
        return self.pool(x.contiguous(memory_format=torch.channels_last)).contiguous()
