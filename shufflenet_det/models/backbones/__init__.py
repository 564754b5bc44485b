from .shufflenet_v1 import (BASE_CHANNELS, GROUPS, OFFICIAL_CHANNELS, STAGE_UNITS, WIDEN_FACTORS,
                            ShuffleNetV1, init_like_official, init_shufflenet_weights,
                            shufflenet_v1_channels)

__all__ = ['BASE_CHANNELS', 'GROUPS', 'OFFICIAL_CHANNELS', 'STAGE_UNITS', 'ShuffleNetV1',
           'WIDEN_FACTORS', 'init_like_official', 'init_shufflenet_weights',
           'shufflenet_v1_channels']
