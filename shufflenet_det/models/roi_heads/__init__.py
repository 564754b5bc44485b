from .shufflenet_shared_head import ShuffleNetV1SharedHead

__all__ = ['ShuffleNetV1SharedHead']
