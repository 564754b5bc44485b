import pytest
import torch

from shufflenet_det.models.layers import (channel_shuffle, channel_shuffle_indices,
                                          inverse_channel_shuffle,
                                          inverse_channel_shuffle_indices)


def test_shuffle_of_six_channels_in_three_groups_matches_the_paper():
    # groups {0,1} {2,3} {4,5}: read as a (3, 2) grid, transposed to (2, 3), flattened.
    x = torch.arange(6.).view(1, 6, 1, 1)
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]
    assert channel_shuffle_indices(6, 3) == [0, 2, 4, 1, 3, 5]


def test_shuffle_of_twelve_channels_in_four_groups():
    x = torch.arange(12.).view(1, 12, 1, 1)
    expected = [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]
    assert channel_shuffle(x, 4).flatten().tolist() == expected
    assert channel_shuffle_indices(12, 4) == expected


@pytest.mark.parametrize('channels,groups', [(6, 2), (240, 3), (384, 8), (7, 1)])
def test_indices_describe_the_tensor_permutation(channels, groups):
    x = torch.randn(2, channels, 3, 5)
    idx = channel_shuffle_indices(channels, groups)
    assert sorted(idx) == list(range(channels))
    torch.testing.assert_close(channel_shuffle(x, groups), x[:, idx], rtol=0, atol=0)


def test_shuffle_with_n_groups_inverts_shuffle_with_g_groups():
    x = torch.randn(1, 24, 2, 2)
    torch.testing.assert_close(channel_shuffle(channel_shuffle(x, 3), 8), x, rtol=0, atol=0)


def test_shuffle_keeps_gradients_and_channels_last_input():
    x = torch.randn(1, 6, 4, 4).to(memory_format=torch.channels_last).requires_grad_()
    channel_shuffle(x, 3).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


def test_indivisible_channels_are_rejected():
    with pytest.raises(ValueError, match='7 channels and groups=3'):
        channel_shuffle(torch.zeros(1, 7, 1, 1), 3)
    with pytest.raises(ValueError, match='groups=0'):
        channel_shuffle_indices(6, 0)


def test_the_official_codes_shuffle_is_the_inverse_permutation():
    # Megvii's code reads 6 channels in 3 groups as a (2, 3) grid: 0 3 1 4 2 5.
    x = torch.arange(6.).view(1, 6, 1, 1)
    assert inverse_channel_shuffle(x, 3).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    assert inverse_channel_shuffle_indices(6, 3) == [0, 3, 1, 4, 2, 5]
    y = torch.randn(2, 96, 3, 3)
    torch.testing.assert_close(inverse_channel_shuffle(channel_shuffle(y, 8), 8), y, rtol=0, atol=0)
    with pytest.raises(ValueError, match='7 channels and groups=2'):
        inverse_channel_shuffle(torch.zeros(1, 7, 1, 1), 2)
