"""How many images were evaluated and how many detections the model made.

MMDetection's ``CocoMetric`` answers a prediction set without a single box with a
log line ("The testing results of the whole dataset is empty") and no metrics at
all, which ``tools/test.py`` would otherwise write as ``{}``. Counting the
detections beside it lets the evaluation report say plainly what happened.
"""
from typing import Sequence

from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric


@METRICS.register_module()
class DetectionCount(BaseMetric):
    """Reports ``count/images`` and ``count/detections`` (boxes over all images).

    Args:
        collect_device (str): Where results are gathered across ranks. Default: 'cpu'.
        prefix (str, optional): Metric name prefix. Default: 'count'.
    """

    default_prefix = 'count'

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            instances = sample['pred_instances'] if isinstance(sample, dict) \
                else sample.pred_instances
            self.results.append(len(instances['scores']))

    def compute_metrics(self, results: list) -> dict:
        return dict(images=len(results), detections=int(sum(results)))


_COCO_METRICS = ('CocoMetric', 'mmdet.CocoMetric', 'ValidatedCocoMetric',
                 'mmdet.ValidatedCocoMetric')


def coco_metric_names(evaluator_cfg) -> list[str]:
    """The AP keys ``CocoMetric`` reports for ``evaluator_cfg`` (a metric config or a list)."""
    names = []
    for cfg in evaluator_cfg if isinstance(evaluator_cfg, (list, tuple)) else [evaluator_cfg]:
        if isinstance(cfg, dict) and cfg.get('type') in _COCO_METRICS:
            prefix = cfg.get('prefix') or 'coco'
            metrics = cfg.get('metric', 'bbox')
            for metric in [metrics] if isinstance(metrics, str) else metrics:
                names += [f'{prefix}/{metric}_mAP{suffix}'
                          for suffix in ('', '_50', '_75', '_s', '_m', '_l')]
    return names
