"""The official Megvii ShuffleNetV1, run directly from its state dict, to verify conversions.

Written from the release's documented format (module names, the inverse channel
shuffle, BGR 0-255 input), not from this project's modules, so that a converted
backbone is compared with an independent definition of the official network.
"""
from collections.abc import Mapping
from itertools import accumulate

import torch
import torch.nn.functional as F
from torch import Tensor

from ..models.backbones import STAGE_UNITS
from ..models.layers import inverse_channel_shuffle

# Index of each stage's first (stride-2) and last unit in ``features.N``.
STAGE_STARTS = tuple(accumulate(STAGE_UNITS, initial=0))[:-1]
STAGE_ENDS = tuple(n - 1 for n in accumulate(STAGE_UNITS))


def megvii_forward(state: Mapping[str, Tensor], x: Tensor, groups: int) -> list[Tensor]:
    """Run the official network from its (``module.``-stripped) state dict, in eval mode.

    Args:
        state (Mapping[str, Tensor]): ``first_conv.*``, ``features.N.*`` tensors.
        x (Tensor): BGR images in 0-255, (N, 3, H, W).
        groups (int): The release's g.

    Returns:
        list[Tensor]: The output of Stages 2, 3 and 4 (a wrong stem shows in all three).
    """
    def bn(y, prefix):
        return F.batch_norm(y, state[f'{prefix}.running_mean'], state[f'{prefix}.running_var'],
                            state[f'{prefix}.weight'], state[f'{prefix}.bias'], eps=1e-5)

    y = F.relu(bn(F.conv2d(x, state['first_conv.0.weight'], stride=2, padding=1), 'first_conv.1'))
    y = F.max_pool2d(y, 3, 2, 1)
    feats = []
    for index in range(sum(STAGE_UNITS)):
        p = f'features.{index}'
        stride = 2 if index in STAGE_STARTS else 1
        w1, wd, w2 = (state[f'{p}.branch_main_{k}.weight'] for k in ('1.0', '1.3', '2.0'))
        b = F.conv2d(y, w1, groups=y.shape[1] // w1.shape[1])
        b = F.relu(bn(b, f'{p}.branch_main_1.1'))
        b = bn(F.conv2d(b, wd, stride=stride, padding=1, groups=b.shape[1]), f'{p}.branch_main_1.4')
        b = inverse_channel_shuffle(b, groups)
        b = bn(F.conv2d(b, w2, groups=groups), f'{p}.branch_main_2.1')
        y = torch.cat((F.avg_pool2d(y, 3, 2, 1), F.relu(b)), 1) if stride == 2 else F.relu(y + b)
        if index in STAGE_ENDS:
            feats.append(y)
    return feats
