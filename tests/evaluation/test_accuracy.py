import pytest
import torch

from shufflenet_det.evaluation import TopKAccuracy


def test_top1_and_top5_on_known_rankings():
    metric = TopKAccuracy(topk=(1, 2, 5))
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    labels = [1, 1, 0, 2]  # ranks 0, 1, 2, 2
    metric.process(None, [dict(pred_score=s, gt_label=y) for s, y in zip(scores, labels)])
    assert metric.compute_metrics(metric.results) == {'top1': 25.0, 'top2': 50.0, 'top5': 100.0}


def test_bad_arguments_and_missing_labels():
    with pytest.raises(ValueError, match=r'topk must be positive integers, got \(0, 5\)'):
        TopKAccuracy(topk=(0, 5))
    with pytest.raises(ValueError, match='needs gt_label'):
        TopKAccuracy().process(None, [dict(pred_score=torch.ones(3), gt_label=None)])
