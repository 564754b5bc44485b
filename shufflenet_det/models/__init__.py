"""Importing this package registers every model component in mmdet's ``MODELS``."""
from .backbones import ShuffleNetV1, ShuffleUnit, make_shuffle_stage
from .classifiers import ClsDataPreprocessor, LinearClsHead, ShuffleNetClassifier
from .layers import channel_shuffle, channel_shuffle_indices

__all__ = ['ClsDataPreprocessor', 'LinearClsHead', 'ShuffleNetClassifier', 'ShuffleNetV1', 'ShuffleUnit', 'make_shuffle_stage', 'channel_shuffle',
           'channel_shuffle_indices']
