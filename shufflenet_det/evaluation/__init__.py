from .accuracy import TopKAccuracy
from .detection_count import DetectionCount, coco_metric_names

__all__ = ['DetectionCount', 'TopKAccuracy', 'coco_metric_names']
