"""Importing this package registers every model component in mmdet's ``MODELS``."""
from .backbones import (ShuffleNetV1, ShuffleUnit, init_like_official, make_shuffle_stage,
                        shufflenet_v1_channels)
from .classifiers import ClsDataPreprocessor, LinearClsHead, ShuffleNetClassifier
from .layers import channel_shuffle, channel_shuffle_indices
from .roi_heads import ShuffleNetV1SharedHead

__all__ = ['ClsDataPreprocessor', 'LinearClsHead', 'ShuffleNetClassifier', 'ShuffleNetV1',
           'ShuffleNetV1SharedHead', 'ShuffleUnit', 'channel_shuffle', 'channel_shuffle_indices',
           'init_like_official', 'make_shuffle_stage', 'shufflenet_v1_channels']
