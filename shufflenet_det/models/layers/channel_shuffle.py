"""The channel shuffle of ShuffleNet (Zhang et al., 2017, Sec. 3.1), and its inverse.

A tensor with ``groups * n`` channels is read as a ``(groups, n)`` grid,
transposed to ``(n, groups)`` and flattened, so that every group of the next
grouped convolution receives channels from every group of the previous one.

The official Megvii code applies the inverse permutation (channels read as an
``(n, groups)`` grid). Both orders are offered, as ``shuffle_order='paper'`` and
``'megvii'`` of the backbone, so that every official checkpoint runs exactly.
"""
import torch
from torch import Tensor

#: ``shuffle_order`` values: the paper's permutation, or the official code's inverse.
SHUFFLE_ORDERS = ('paper', 'megvii')


def channel_shuffle_indices(channels: int, groups: int) -> list[int]:
    """Source channel of each output channel of :func:`channel_shuffle`.

    ``channel_shuffle(x, groups)[:, i] == x[:, indices[i]]`` for every ``i``.

    Args:
        channels (int): Number of channels, a multiple of ``groups``.
        groups (int): Number of groups to interleave.

    Returns:
        list[int]: The permutation, one source index per output channel.
    """
    _check_divisible(channels, groups)
    per_group = channels // groups
    # Output channel i = j * groups + g takes channel g * per_group + j.
    return [(i % groups) * per_group + i // groups for i in range(channels)]


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave the channels of ``x`` (N, C, H, W) across ``groups`` groups.

    Args:
        x (Tensor): Input of shape (N, C, H, W); C must be a multiple of
            ``groups``.
        groups (int): Number of groups of the preceding grouped convolution.

    Returns:
        Tensor: A tensor of the same shape, with channels permuted as
        :func:`channel_shuffle_indices` describes.
    """
    batch, channels, height, width = x.shape
    _check_divisible(channels, groups)
    x = x.reshape(batch, groups, channels // groups, height, width)
    return torch.flatten(x.transpose(1, 2), 1, 2)


def inverse_channel_shuffle_indices(channels: int, groups: int) -> list[int]:
    """Source channel of each output channel of :func:`inverse_channel_shuffle`."""
    _check_divisible(channels, groups)
    return channel_shuffle_indices(channels, channels // groups)


def inverse_channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """The inverse of :func:`channel_shuffle` with ``groups``: the official Megvii code's shuffle.

    ``inverse_channel_shuffle(channel_shuffle(x, g), g) == x``. Reading the
    channels as an ``(n, groups)`` grid and transposing is the same as the paper's
    shuffle with ``n = C / groups`` groups.
    """
    _check_divisible(x.shape[1], groups)
    return channel_shuffle(x, x.shape[1] // groups)


def check_shuffle_order(shuffle_order: str) -> str:
    """Return ``shuffle_order`` if it is one of :data:`SHUFFLE_ORDERS`.

    Raises:
        ValueError: naming the value and the allowed ones.
    """
    if shuffle_order not in SHUFFLE_ORDERS:
        raise ValueError(f'shuffle_order must be one of {SHUFFLE_ORDERS} (the paper\'s '
                         f'permutation, or the inverse one of the official Megvii code), '
                         f'got {shuffle_order!r}')
    return shuffle_order


def _check_divisible(channels: int, groups: int) -> None:
    if groups < 1 or channels % groups:
        raise ValueError(f'channel_shuffle needs a channel count divisible by groups, '
                         f'got {channels} channels and groups={groups}')


class _ExportedChannelShuffle(torch.autograd.Function):
    """:func:`channel_shuffle` that ONNX export writes as one ``Gather`` node.

    Traced, the reshape/transpose form becomes about 25 nodes per unit, most of them
    computing the output shape from ``Shape`` with ``Gather``, ``Unsqueeze`` and
    ``Concat``. The permutation is a constant, so one ``Gather`` along the channel
    axis with :func:`channel_shuffle_indices` does it. ONNX Runtime runs it faster than
    Reshape/Transpose/Reshape with a constant shape (timed in docs/benchmarks.md, Notes
    on ONNX Runtime), and it works for any batch, including none.
    """

    @staticmethod
    def forward(ctx, x: Tensor, groups: int, channels: int) -> Tensor:
        return channel_shuffle(x, groups)

    @staticmethod
    def symbolic(g, x, groups: int, channels: int):
        order = torch.tensor(channel_shuffle_indices(channels, groups), dtype=torch.long)
        return g.op('Gather', x, g.op('Constant', value_t=order), axis_i=1)


def exportable_channel_shuffle(x: Tensor, groups: int, channels: int) -> Tensor:
    """:func:`channel_shuffle` of ``x`` with ``channels`` channels, written to ONNX as one
    ``Gather`` while ``torch.onnx.export`` runs (the count must be a constant there)."""
    if torch.onnx.is_in_onnx_export():
        return _ExportedChannelShuffle.apply(x, groups, channels)
    return channel_shuffle(x, groups)
