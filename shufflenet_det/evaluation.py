"""Metrics: COCO AP with labels matched to categories by name, detection counts, top-k
accuracy."""
from typing import Optional, Sequence

import torch
from mmdet.evaluation import CocoMetric
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.fileio import get_local_path

from .datasets import AnnotationError, ValidatedCOCO


@METRICS.register_module()
class ValidatedCocoMetric(CocoMetric):
    """``CocoMetric`` scoring label ``i`` as the category named ``classes[i]``, whatever the
    order of the file's ``categories`` (mmdet's follows that order: a wrong mAP, exit 0).

    The file is checked as by ``ValidatedCocoDataset`` (boxes with non-positive size stay
    ground truth, as in pycocotools). Without annotations it is an error unless
    ``format_only=True`` (predictions for a test server, as for COCO test-dev).

    Args: as :class:`mmdet.evaluation.CocoMetric`.
    """

    def __init__(self, ann_file: Optional[str] = None, **kwargs) -> None:
        super().__init__(ann_file=None, **kwargs)
        if ann_file is None:
            return
        with get_local_path(ann_file, backend_args=self.backend_args) as local_path:
            self._coco_api = ValidatedCOCO(local_path, skip_degenerate_boxes=False)
        if not self._coco_api.dataset['annotations'] and not self.format_only:
            raise AnnotationError(
                f'{ann_file} has no annotations (it lists '
                f'{len(self._coco_api.dataset["images"])} images): there is nothing to '
                f'compute AP against. For predictions only (an image list such as COCO '
                f'test-dev), set the evaluator\'s format_only=True and outfile_prefix')

    @BaseMetric.dataset_meta.setter
    def dataset_meta(self, dataset_meta: Optional[dict]) -> None:
        BaseMetric.dataset_meta.fset(self, dataset_meta)
        if self._coco_api is not None and dataset_meta and dataset_meta.get('classes'):
            self.cat_ids = self._coco_api.get_cat_ids(cat_names=dataset_meta['classes'])

    def compute_metrics(self, results: list) -> dict:
        if self._coco_api is None and not self.format_only and results and \
                not any(gt['anns'] for gt, _ in results):
            raise AnnotationError(
                f'the {len(results)} evaluated images hold no ground-truth box: there is '
                f'nothing to compute AP against')
        return super().compute_metrics(results)


@METRICS.register_module()
class DetectionCount(BaseMetric):
    """Reports ``count/images`` and ``count/detections``: mmdet's ``CocoMetric`` reports no
    metrics at all for predictions without a single box."""

    default_prefix = 'count'

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            instances = sample['pred_instances'] if isinstance(sample, dict) \
                else sample.pred_instances
            self.results.append(len(instances['scores']))

    def compute_metrics(self, results: list) -> dict:
        return dict(images=len(results), detections=int(sum(results)))


def coco_metric_names(evaluator_cfg) -> list[str]:
    """The AP keys ``CocoMetric`` reports for ``evaluator_cfg`` (a metric config or a list)."""
    names = []
    for cfg in evaluator_cfg if isinstance(evaluator_cfg, (list, tuple)) else [evaluator_cfg]:
        if isinstance(cfg, dict) and cfg.get('type') in ('CocoMetric', 'mmdet.CocoMetric',
                                                         'ValidatedCocoMetric',
                                                         'mmdet.ValidatedCocoMetric'):
            metrics = cfg.get('metric', 'bbox')
            for metric in [metrics] if isinstance(metrics, str) else metrics:
                names += [f'{cfg.get("prefix") or "coco"}/{metric}_mAP{suffix}'
                          for suffix in ('', '_50', '_75', '_s', '_m', '_l')]
    return names


@METRICS.register_module()
class TopKAccuracy(BaseMetric):
    """Top-k accuracy (%) of ``ShuffleNetClassifier`` predictions, as ``top1``, ``top5``...
    With fewer classes than k, top-k is 100%.

    Args:
        topk (Sequence[int]): The k values. Default: (1, 5).
        collect_device (str): Where results are gathered across ranks. Default: 'cpu'.
        prefix (str, optional): Metric name prefix. Default: None.
    """

    default_prefix = 'accuracy'

    def __init__(self, topk: Sequence[int] = (1, 5), collect_device: str = 'cpu',
                 prefix=None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not topk or any(int(k) < 1 for k in topk):
            raise ValueError(f'topk must be positive integers, got {topk}')
        self.topk = tuple(int(k) for k in topk)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if sample.get('gt_label') is None:
                raise ValueError('TopKAccuracy needs gt_label in every prediction')
            order = torch.argsort(sample['pred_score'], descending=True)
            self.results.append(int((order == sample['gt_label']).nonzero()[0, 0]))

    def compute_metrics(self, results: list) -> dict:
        ranks = torch.tensor(results)
        return {f'top{k}': round(100.0 * float((ranks < k).float().mean()), 3) for k in self.topk}
