from .data_preprocessor import ClsDataPreprocessor
from .shufflenet_classifier import LinearClsHead, ShuffleNetClassifier

__all__ = ['ClsDataPreprocessor', 'LinearClsHead', 'ShuffleNetClassifier']
