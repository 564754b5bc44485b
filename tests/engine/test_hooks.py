import warnings
from types import SimpleNamespace

import pytest
import torch

from shufflenet_det.engine import NonFiniteLossHook


def test_finite_losses_pass():
    runner = SimpleNamespace(epoch=0, iter=4)
    NonFiniteLossHook().after_train_iter(runner, 4, outputs=dict(loss=torch.tensor(1.2)))


@pytest.mark.parametrize('value', [float('nan'), float('inf')])
def test_a_non_finite_loss_stops_training_and_says_where(value):
    runner = SimpleNamespace(epoch=2, iter=130)
    outputs = dict(loss=torch.tensor(value), loss_cls=torch.tensor(0.5))
    with pytest.raises(RuntimeError, match=rf'loss became {value} at epoch 3, iteration 131 '
                                           r'\(loss=.*, loss_cls=0\.5\).*gradient clipping'):
        NonFiniteLossHook().after_train_iter(runner, 0, outputs=outputs)


def test_losses_that_still_require_grad_are_read_without_a_warning():
    """Train steps return losses attached to the autograd graph; ``float()`` of one warns."""
    weight = torch.ones(1, requires_grad=True)
    runner = SimpleNamespace(epoch=0, iter=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        NonFiniteLossHook().after_train_iter(runner, 4, outputs=dict(loss=(weight * 2).sum()))
        with pytest.raises(RuntimeError, match=r'loss became nan .*\(loss=nan, loss_cls=0\.5\)'):
            NonFiniteLossHook().after_train_iter(runner, 4, outputs=dict(
                loss=(weight * float('nan')).sum(), loss_cls=(weight * 0.5).sum()))
    assert [str(w.message) for w in caught if 'requires_grad' in str(w.message)] == []
