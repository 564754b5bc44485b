"""The channel shuffle of ShuffleNet (Zhang et al., 2017, Sec. 3.1).

A tensor with ``groups * n`` channels is read as a ``(groups, n)`` grid,
transposed to ``(n, groups)`` and flattened, so that every group of the next
grouped convolution receives channels from every group of the previous one.
"""
import torch
from torch import Tensor


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


def _check_divisible(channels: int, groups: int) -> None:
    if groups < 1 or channels % groups:
        raise ValueError(f'channel_shuffle needs a channel count divisible by groups, '
                         f'got {channels} channels and groups={groups}')
