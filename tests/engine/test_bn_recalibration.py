from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MMLogger
from torch import nn

from shufflenet_det.engine import BNRecalibrationHook


class TinyModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm2d(2, momentum=0.1)
        self.data_preprocessor = lambda batch, training: dict(inputs=batch)

    def forward(self, inputs, mode='tensor'):
        return self.bn(inputs)


def test_statistics_become_the_exact_average_over_the_batches():
    torch.manual_seed(0)
    batches = [torch.randn(4, 2, 3, 3) * s + s for s in (1.0, 2.0, 3.0)]
    model = TinyModel().eval()
    model.bn.running_mean.fill_(7.0)
    runner = SimpleNamespace(model=model, train_dataloader=batches,
                             logger=MMLogger.get_current_instance())
    BNRecalibrationHook().recalibrate(runner)
    means = torch.stack([b.mean((0, 2, 3)) for b in batches])
    variances = torch.stack([b.transpose(0, 1).flatten(1).var(1, unbiased=True) for b in batches])
    torch.testing.assert_close(model.bn.running_mean, means.mean(0))
    torch.testing.assert_close(model.bn.running_var, variances.mean(0))
    assert model.bn.momentum == 0.1 and not model.training


def test_num_iters_limits_and_repeats_the_pass():
    batches = [torch.full((2, 2, 1, 1), float(v)) for v in (1, 3)]
    model = TinyModel()
    runner = SimpleNamespace(model=model, train_dataloader=batches,
                             logger=MMLogger.get_current_instance())
    BNRecalibrationHook(num_iters=3).recalibrate(runner)  # batches 1, 3, 1
    torch.testing.assert_close(model.bn.running_mean, torch.full((2, ), 5 / 3))
    with pytest.raises(ValueError, match='num_iters must be positive, got 0'):
        BNRecalibrationHook(num_iters=0)
