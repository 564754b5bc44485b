import pytest
import torch
from torch import nn

from shufflenet_det.models.layers import ChannelsLastPool, PointwiseMatmul, replace_pointwise_convs


@pytest.mark.parametrize('groups', [1, 3, 8])
@pytest.mark.parametrize('channels_last', [False, True])
def test_pointwise_matmul_equals_the_convolution(groups, channels_last):
    conv = nn.Conv2d(48, 96, 1, groups=groups, bias=True)
    x = torch.randn(2, 48, 7, 9)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    out = PointwiseMatmul(conv)(x)
    torch.testing.assert_close(out, conv(x), rtol=1e-5, atol=1e-5)
    assert out.is_contiguous(memory_format=torch.channels_last) == channels_last


def test_pointwise_matmul_refuses_other_convolutions():
    with pytest.raises(ValueError, match='needs a 1x1 stride-1 unpadded conv'):
        PointwiseMatmul(nn.Conv2d(8, 8, 3, padding=1))


def test_only_pointwise_convolutions_are_replaced():
    model = nn.Sequential(nn.Conv2d(6, 6, 1, groups=3), nn.Conv2d(6, 6, 3, padding=1),
                          nn.Sequential(nn.Conv2d(6, 12, 1), nn.Conv2d(12, 12, 1, stride=2)))
    assert replace_pointwise_convs(model) == 2
    assert [type(m).__name__ for m in (model[0], model[1], model[2][0], model[2][1])] == \
        ['PointwiseMatmul', 'Conv2d', 'PointwiseMatmul', 'Conv2d']


def test_channels_last_pool_keeps_the_input_layout():
    pool = ChannelsLastPool(nn.MaxPool2d(3, 2, 1))
    x = torch.randn(1, 8, 10, 12)
    out = pool(x)
    assert out.is_contiguous() and torch.equal(out, nn.MaxPool2d(3, 2, 1)(x))
    out = pool(x.contiguous(memory_format=torch.channels_last))
    assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
