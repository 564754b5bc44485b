"""Importing this package registers every model component in mmdet's ``MODELS``."""
from .backbones import ShuffleNetV1, init_like_official, shufflenet_v1_channels
from .classifiers import ClsDataPreprocessor, LinearClsHead, ShuffleNetClassifier
from .layers import (ShuffleUnit, channel_shuffle, channel_shuffle_indices,
                     inverse_channel_shuffle, make_shuffle_stage)
from .roi_heads import ShuffleNetV1SharedHead

__all__ = ['ClsDataPreprocessor', 'LinearClsHead', 'ShuffleNetClassifier', 'ShuffleNetV1',
           'ShuffleNetV1SharedHead', 'ShuffleUnit', 'channel_shuffle', 'channel_shuffle_indices',
           'init_like_official', 'inverse_channel_shuffle', 'make_shuffle_stage',
           'shufflenet_v1_channels']
