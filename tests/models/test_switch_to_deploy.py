"""Each ShuffleNet module converts itself for inference; outputs stay equal to 1e-4."""
import copy

import pytest
import torch
from mmdet.registry import MODELS
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from shufflenet_det.models import ShuffleNetClassifier, ShuffleNetV1, ShuffleUnit
from shufflenet_det.models.layers import ChannelsLastPool, PointwiseMatmul

from ..helpers import REPO


def trained_looking(model):
    """Non-trivial BN statistics and affine terms, as after training."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return model.eval()


@pytest.mark.parametrize('kwargs', [
    dict(groups=3, widen_factor=1.0), dict(groups=3, widen_factor=2.0),
    dict(groups=8, widen_factor=0.5), dict(groups=1, widen_factor=0.5),
    dict(groups=8, widen_factor=0.5, shuffle_order='megvii'),
    dict(groups=3, widen_factor=0.5, with_se=True), dict(groups=4, widen_factor=0.5, shallow=True)])
@pytest.mark.parametrize('options', [
    dict(), dict(memory_format='contiguous'), dict(pointwise='conv'), dict(fast_shuffle=True),
    dict(merge_inplace=False)])
def test_deployed_backbone_matches_the_plain_one(kwargs, options):
    plain = trained_looking(ShuffleNetV1(out_indices=(0, 1, 2), **kwargs))
    fast = copy.deepcopy(plain).switch_to_deploy(**options)
    x = torch.rand(2, 3, 96, 128) * 255
    with torch.no_grad():
        for a, b in zip(plain(x), fast(x)):
            assert a.shape == b.shape
            assert (a - b).abs().max().item() <= 1e-4 * max(1.0, a.abs().max().item())
    assert not any(isinstance(m, _BatchNorm) for m in fast.modules())
    assert isinstance(fast.maxpool, ChannelsLastPool)
    units = [m for m in fast.modules() if isinstance(m, ShuffleUnit)]
    assert all(u.deployed and u.fast_shuffle == options.get('fast_shuffle', False)
               and u.merge_inplace == options.get('merge_inplace', True) for u in units)
    matmuls = [m for m in fast.modules() if isinstance(m, PointwiseMatmul)]
    expected = 0 if options.get('pointwise') == 'conv' else 2 * len(units)
    assert len(matmuls) >= expected and (expected > 0) == bool(matmuls)
    assert fast.channels_last == (options.get('memory_format', 'channels_last') == 'channels_last')


def test_flags_are_set_in_init_and_deploy_only_changes_them():
    model = ShuffleNetV1(widen_factor=0.5)
    unit = model.layers[0][1]
    assert (model.deployed, model.channels_last) == (False, False)
    assert (unit.deployed, unit.fast_shuffle, unit.merge_inplace) == (False, False, False)
    model.train()  # fine before switch_to_deploy
    assert model.switch_to_deploy() is model
    assert (model.deployed, model.channels_last, unit.deployed, unit.merge_inplace) == \
        (True, True, True, True)
    assert unit.act.inplace
    with pytest.raises(RuntimeError, match=r'converted by switch_to_deploy\(\).*inference only'):
        model.train()
    model.eval()  # eval stays allowed
    model.switch_to_deploy()  # a second call changes nothing
    assert isinstance(model.maxpool.pool, nn.MaxPool2d)


def test_a_unit_converts_itself():
    unit = trained_looking(ShuffleUnit(24, 48, 12, groups=3, stride=2))
    plain = copy.deepcopy(unit)
    unit.switch_to_deploy()
    assert isinstance(unit.avgpool, ChannelsLastPool)
    assert isinstance(unit.g_conv_1x1_compress.conv, PointwiseMatmul)
    assert isinstance(unit.g_conv_1x1_expand.conv, PointwiseMatmul)
    x = torch.randn(2, 24, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(unit(x), plain(x), rtol=1e-4, atol=1e-4)


def test_classifier_logits_survive_switch_to_deploy():
    plain = trained_looking(ShuffleNetClassifier(
        backbone=dict(type='ShuffleNetV1', widen_factor=1.0, out_indices=(2, ))))
    fast = copy.deepcopy(plain).switch_to_deploy()
    assert fast.backbone.deployed
    x = torch.rand(1, 3, 224, 224) * 255
    with torch.no_grad():
        torch.testing.assert_close(fast(x), plain(x), rtol=1e-4, atol=1e-4)


def test_bad_deploy_options_leave_the_model_untouched():
    model = ShuffleNetV1(widen_factor=0.5)
    with pytest.raises(ValueError, match=r"memory_format must be one of \('contiguous', "
                                         r"'channels_last'\), got 'nhwc'"):
        model.switch_to_deploy(memory_format='nhwc')
    with pytest.raises(ValueError, match=r"pointwise must be one of \('matmul', 'conv'\)"):
        model.switch_to_deploy(pointwise='winograd')
    assert not model.deployed and any(isinstance(m, _BatchNorm) for m in model.modules())


def test_c4_shared_head_converts_itself():
    from mmengine.config import Config
    cfg = Config.fromfile(str(REPO / 'configs/faster_rcnn_shufflenet1x_coco.py'))
    model = trained_looking(MODELS.build(cfg.model))
    backbone, head = model.backbone, model.roi_head.shared_head
    fast_backbone = copy.deepcopy(backbone).switch_to_deploy()
    fast_head = copy.deepcopy(head).switch_to_deploy()
    assert fast_head.deployed
    with pytest.raises(RuntimeError, match='inference only'):
        fast_head.train()
    x = torch.rand(1, 3, 160, 224) * 255
    rois = torch.randn(5, 480, 14, 14)
    with torch.no_grad():
        torch.testing.assert_close(fast_backbone(x)[0], backbone(x)[0], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(fast_head(rois), head(rois), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_compiled_fast_path_matches_the_plain_backbone():
    plain = trained_looking(ShuffleNetV1(widen_factor=0.25, out_indices=(2, )))
    fast = copy.deepcopy(plain).switch_to_deploy(compile=True)
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        torch.testing.assert_close(fast(x)[0], plain(x)[0], rtol=1e-4, atol=1e-4)
