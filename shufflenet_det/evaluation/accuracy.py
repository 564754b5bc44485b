"""Top-k classification accuracy as an MMEngine metric."""
from typing import Sequence

import torch
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric


@METRICS.register_module()
class TopKAccuracy(BaseMetric):
    """Top-k accuracy (%) of ``ShuffleNetClassifier`` predictions.

    Args:
        topk (Sequence[int]): The k values. Default: (1, 5).
        collect_device (str): Where results are gathered across ranks. Default: 'cpu'.
        prefix (str, optional): Metric name prefix. Default: None.

    Reports ``top1``, ``top5``, ... With fewer classes than k, top-k is 100%.
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
            score = sample['pred_score']
            order = torch.argsort(score, descending=True)
            rank = int((order == sample['gt_label']).nonzero()[0, 0])
            self.results.append(rank)

    def compute_metrics(self, results: list) -> dict:
        ranks = torch.tensor(results)
        return {f'top{k}': round(100.0 * float((ranks < k).float().mean()), 3) for k in self.topk}
