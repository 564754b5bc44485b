from .shufflenet_v1 import (ShuffleNetV1, ShuffleUnit, init_like_official, make_shuffle_stage,
                            shufflenet_v1_channels)

__all__ = ['ShuffleNetV1', 'ShuffleUnit', 'init_like_official', 'make_shuffle_stage',
           'shufflenet_v1_channels']
