from .accuracy import TopKAccuracy
from .coco_metric import ValidatedCocoMetric
from .detection_count import DetectionCount, coco_metric_names

__all__ = ['DetectionCount', 'TopKAccuracy', 'ValidatedCocoMetric', 'coco_metric_names']
