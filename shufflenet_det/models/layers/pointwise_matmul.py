"""1x1 convolutions as batched matrix products, for inference on CPU.

At batch 1 on one thread PyTorch runs a 1x1 convolution on its slow path, once
per group with a copy of each slice (measured on 2-core x86 machines with
PyTorch 2.11, ``tools/benchmark.py backbone --ablation``). One ``matmul`` over a
view of the input does the same work without the copies.
"""
import torch
from torch import Tensor, nn


class PointwiseMatmul(nn.Module):
    """A 1x1, stride-1 convolution (any ``groups``, with bias) as a batched matmul.

    NCHW input is viewed as (N, g, C/g, HW) and multiplied by the (g, O/g, C/g)
    weights in one call, with no copy; channels_last input takes the (g, NHW, C/g)
    route and returns channels_last.

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


def is_pointwise(module: nn.Module) -> bool:
    """Whether ``module`` is a 1x1, stride-1, unpadded, undilated ``nn.Conv2d``."""
    return isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) \
        and module.stride == (1, 1) and module.padding == (0, 0) and module.dilation == (1, 1)


def replace_pointwise_convs(module: nn.Module) -> int:
    """Replace every pointwise ``nn.Conv2d`` inside ``module`` by a :class:`PointwiseMatmul`.

    Returns:
        int: How many were replaced.
    """
    replaced = 0
    for name, child in module.named_children():
        if is_pointwise(child):
            setattr(module, name, PointwiseMatmul(child))
            replaced += 1
        else:
            replaced += replace_pointwise_convs(child)
    return replaced
