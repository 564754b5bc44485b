from .shufflenet_classifier import ClsDataPreprocessor, LinearClsHead, ShuffleNetClassifier

__all__ = ['ClsDataPreprocessor', 'LinearClsHead', 'ShuffleNetClassifier']
