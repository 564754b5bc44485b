from .shufflenet_v1 import ShuffleNetV1, ShuffleUnit, make_shuffle_stage

__all__ = ['ShuffleNetV1', 'ShuffleUnit', 'make_shuffle_stage']
