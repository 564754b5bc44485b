"""The channel shuffle of ShuffleNet (paper Sec. 3.1) and its inverse, the official code's.

``C = groups * n`` channels are read as a ``(groups, n)`` grid, transposed and flattened,
so that every group of the next grouped convolution sees every group of the previous one.
The official Megvii code applies the inverse permutation (an ``(n, groups)`` grid), which
is the same shuffle with ``n`` groups; ``shuffle_order='megvii'`` selects it.
"""
import torch
from torch import Tensor


def _check_divisible(channels: int, groups: int) -> None:
    if groups < 1 or channels % groups:
        raise ValueError(f'channel_shuffle needs a channel count divisible by groups, '
                         f'got {channels} channels and groups={groups}')


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave the channels of ``x`` (N, C, H, W) across ``groups`` groups."""
    batch, channels, height, width = x.shape
    _check_divisible(channels, groups)
    x = x.reshape(batch, groups, channels // groups, height, width)
    return torch.flatten(x.transpose(1, 2), 1, 2)


def channel_shuffle_indices(channels: int, groups: int) -> list[int]:
    """``indices`` with ``channel_shuffle(x, groups)[:, i] == x[:, indices[i]]``."""
    _check_divisible(channels, groups)
    per_group = channels // groups
    return [(i % groups) * per_group + i // groups for i in range(channels)]


def inverse_channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """The inverse of :func:`channel_shuffle` with ``groups`` (the official code's shuffle)."""
    _check_divisible(x.shape[1], groups)
    return channel_shuffle(x, x.shape[1] // groups)


def inverse_channel_shuffle_indices(channels: int, groups: int) -> list[int]:
    """The permutation of :func:`inverse_channel_shuffle`, as :func:`channel_shuffle_indices`."""
    _check_divisible(channels, groups)
    return channel_shuffle_indices(channels, channels // groups)


class _ExportedChannelShuffle(torch.autograd.Function):
    """:func:`channel_shuffle` that ONNX export writes as one ``Gather`` of constant indices
    (traced, reshape/transpose becomes some 25 shape-computing nodes per unit)."""

    @staticmethod
    def forward(ctx, x: Tensor, groups: int, channels: int) -> Tensor:
        return channel_shuffle(x, groups)

    @staticmethod
    def symbolic(g, x, groups: int, channels: int):
        order = torch.tensor(channel_shuffle_indices(channels, groups), dtype=torch.long)
        return g.op('Gather', x, g.op('Constant', value_t=order), axis_i=1)


def exportable_channel_shuffle(x: Tensor, groups: int, channels: int) -> Tensor:
    """:func:`channel_shuffle`, written to ONNX as one ``Gather`` while exporting."""
    if torch.onnx.is_in_onnx_export():
        return _ExportedChannelShuffle.apply(x, groups, channels)
    return channel_shuffle(x, groups)
