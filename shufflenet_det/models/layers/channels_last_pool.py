"""Pooling in channels_last, whatever the input's memory format.

PyTorch's CPU pooling kernels are much faster in channels_last than in NCHW, so the
stem's max-pool and the stride-2 average pools run in channels_last even in a model
kept in NCHW (timed in docs/deploy.md, The PyTorch fast path, with
``tools/benchmark.py backbone --ablation``).
"""
import torch
from torch import Tensor, nn


class ChannelsLastPool(nn.Module):
    """Run a pooling module in channels_last, returning the input's memory format.

    Args:
        pool (nn.Module): The pooling module to wrap (kept as ``self.pool``).
    """

    def __init__(self, pool: nn.Module) -> None:
        super().__init__()
        self.pool = pool

    def forward(self, x: Tensor) -> Tensor:
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            return self.pool(x)
        return self.pool(x.contiguous(memory_format=torch.channels_last)).contiguous()
