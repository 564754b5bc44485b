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


class FrozenStemDetector(nn.Module):
    """A backbone with its stem frozen, a C4 head with ``norm_eval=True``, and a BN that trains."""

    def __init__(self):
        super().__init__()
        from shufflenet_det.models import ShuffleNetV1, ShuffleNetV1SharedHead
        self.backbone = ShuffleNetV1(widen_factor=0.5, num_stages=2, out_indices=(1, ),
                                     frozen_stages=0)
        self.shared_head = ShuffleNetV1SharedHead(widen_factor=0.5, norm_eval=True)
        self.bn = nn.BatchNorm2d(self.shared_head.out_channels)
        self.data_preprocessor = lambda batch, training: dict(inputs=batch)

    def forward(self, inputs, mode='tensor'):
        return self.bn(self.shared_head(self.backbone(inputs)[-1]))


def test_only_the_bn_layers_that_train_are_re_estimated(mmlog):
    torch.manual_seed(0)
    model = FrozenStemDetector().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.fill_(7.0)
                m.running_var.fill_(3.0)
    batches = [torch.randn(2, 3, 64, 64) for _ in range(2)]
    runner = SimpleNamespace(model=model, train_dataloader=batches,
                             logger=MMLogger.get_current_instance())
    BNRecalibrationHook().recalibrate(runner)

    def untouched(module):
        norms = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
        assert norms
        return all(bool((m.running_mean == 7).all() and (m.running_var == 3).all())
                   for m in norms)

    assert untouched(model.backbone.conv1)  # the frozen stem
    assert untouched(model.shared_head)  # norm_eval=True
    trained = [m for m in model.backbone.layers.modules() if isinstance(m, nn.BatchNorm2d)]
    trained.append(model.bn)
    assert all(not (m.running_mean == 7).any() and not (m.running_var == 3).any()
               for m in trained)
    kept = 1 + sum(isinstance(m, nn.BatchNorm2d) for m in model.shared_head.modules())
    assert (f're-estimating {len(trained)} BN layers over 2 batches; {kept} in eval mode '
            '(frozen or norm_eval) keep their statistics') in mmlog.text
    assert not model.training
