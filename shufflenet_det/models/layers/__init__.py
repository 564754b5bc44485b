from .channel_shuffle import (channel_shuffle, channel_shuffle_indices, inverse_channel_shuffle,
                              inverse_channel_shuffle_indices)
from .inference_ops import ChannelsLastPool, PointwiseMatmul, replace_pointwise_convs
from .shuffle_unit import ShuffleUnit, make_shuffle_stage

__all__ = ['ChannelsLastPool', 'PointwiseMatmul', 'ShuffleUnit', 'channel_shuffle',
           'channel_shuffle_indices', 'inverse_channel_shuffle', 'inverse_channel_shuffle_indices',
           'make_shuffle_stage', 'replace_pointwise_convs']
