from .shufflenet_v1 import (GROUPS, OFFICIAL_CHANNELS, STAGE_UNITS, WIDEN_FACTORS, ShuffleNetV1,
                            init_like_official, shufflenet_v1_channels)

__all__ = ['GROUPS', 'OFFICIAL_CHANNELS', 'STAGE_UNITS', 'ShuffleNetV1', 'WIDEN_FACTORS',
           'init_like_official', 'shufflenet_v1_channels']
