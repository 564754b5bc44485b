from .channel_shuffle import (SHUFFLE_ORDERS, channel_shuffle, channel_shuffle_indices,
                              check_shuffle_order, inverse_channel_shuffle,
                              inverse_channel_shuffle_indices)
from .channels_last_pool import ChannelsLastPool
from .pointwise_matmul import PointwiseMatmul, is_pointwise, replace_pointwise_convs
from .shuffle_unit import (MEMORY_FORMATS, POINTWISE_IMPLS, ShuffleUnit, make_shuffle_stage,
                           switch_units_to_deploy)

__all__ = ['MEMORY_FORMATS', 'POINTWISE_IMPLS', 'SHUFFLE_ORDERS', 'ChannelsLastPool',
           'PointwiseMatmul', 'ShuffleUnit', 'channel_shuffle', 'channel_shuffle_indices',
           'check_shuffle_order', 'inverse_channel_shuffle', 'inverse_channel_shuffle_indices',
           'is_pointwise', 'make_shuffle_stage', 'replace_pointwise_convs',
           'switch_units_to_deploy']
