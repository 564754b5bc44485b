"""The inference fast path changes speed, never results (to 1e-4)."""
import copy

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from shufflenet_det.deploy import PointwiseMatmul, deploy_shufflenet
from shufflenet_det.models import ShuffleNetClassifier, ShuffleNetV1

from ..configs.test_detector_configs import REPO


def _trained_looking(model):
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
    dict(groups=3, widen_factor=0.5, with_se=True), dict(groups=4, widen_factor=0.5, shallow=True)])
@pytest.mark.parametrize('options', [
    dict(), dict(memory_format='contiguous'), dict(pointwise='conv'), dict(fast_shuffle=True)])
def test_deployed_backbone_matches_the_plain_one(kwargs, options):
    plain = _trained_looking(ShuffleNetV1(out_indices=(0, 1, 2, 3), **kwargs))
    fast = copy.deepcopy(plain).deploy(**options)
    x = torch.rand(2, 3, 96, 128) * 255
    with torch.no_grad():
        for a, b in zip(plain(x), fast(x)):
            assert a.shape == b.shape
            assert (a - b).abs().max().item() <= 1e-4 * max(1.0, a.abs().max().item())
    assert not any(isinstance(m, _BatchNorm) for m in fast.modules())
    if options.get('pointwise', 'matmul') == 'matmul':
        assert any(isinstance(m, PointwiseMatmul) for m in fast.modules())


def test_deploy_leaves_training_modules_alone_until_called_and_then_refuses_training():
    model = ShuffleNetV1(widen_factor=0.5)
    assert not getattr(model, 'deployed', False)
    model.train()  # fine before deploy
    model.deploy()
    with pytest.raises(RuntimeError, match=r'converted by deploy\(\).*inference only'):
        model.train()
    model.eval()  # eval stays allowed


def test_classifier_logits_survive_deploy():
    plain = _trained_looking(ShuffleNetClassifier(
        backbone=dict(type='ShuffleNetV1', widen_factor=1.0, out_indices=(3, ))))
    fast = copy.deepcopy(plain).deploy()
    x = torch.rand(1, 3, 224, 224) * 255
    with torch.no_grad():
        torch.testing.assert_close(fast(x), plain(x), rtol=1e-4, atol=1e-4)


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


def test_bad_deploy_options():
    with pytest.raises(ValueError, match=r"memory_format must be one of \('contiguous', "
                                         r"'channels_last'\), got 'nhwc'"):
        deploy_shufflenet(ShuffleNetV1(widen_factor=0.5), memory_format='nhwc')
    with pytest.raises(ValueError, match=r"pointwise must be one of \('matmul', 'conv'\)"):
        deploy_shufflenet(ShuffleNetV1(widen_factor=0.5), pointwise='winograd')


def test_c4_detector_parts_match_after_deploy():
    cfg = Config.fromfile(str(REPO / 'configs/faster_rcnn_shufflenet1x_coco.py'))
    model = _trained_looking(MODELS.build(cfg.model))
    backbone, head = model.backbone, model.roi_head.shared_head
    fast_backbone = copy.deepcopy(backbone).deploy()
    fast_head = copy.deepcopy(head).deploy()
    x = torch.rand(1, 3, 160, 224) * 255
    rois = torch.randn(5, 480, 14, 14)
    with torch.no_grad():
        torch.testing.assert_close(fast_backbone(x)[0], backbone(x)[0], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(fast_head(rois), head(rois), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_compiled_fast_path_matches_the_plain_backbone():
    plain = _trained_looking(ShuffleNetV1(widen_factor=0.25, out_indices=(3, )))
    fast = copy.deepcopy(plain).deploy(compile=True)
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        torch.testing.assert_close(fast(x)[0], plain(x)[0], rtol=1e-4, atol=1e-4)


def test_detector_deploy_swaps_roialign_for_an_identical_kernel():
    from mmcv.ops import RoIAlign

    from shufflenet_det.deploy import TorchvisionRoIAlign, deploy_detector
    cfg = Config.fromfile(str(REPO / 'configs/faster_rcnn_shufflenet1x_fpn_coco.py'))
    model = MODELS.build(cfg.model).eval()
    extractor = model.roi_head.bbox_roi_extractor
    feats = (torch.randn(1, 256, 19, 25), torch.randn(1, 256, 10, 13))
    xy = torch.rand(40, 2) * torch.tensor([400., 300.])
    rois = torch.cat([torch.zeros(40, 1), xy, xy + torch.rand(40, 2) * 200 + 4], 1)
    with torch.no_grad():
        before = extractor(feats, rois)
        deploy_detector(model)
        after = model.roi_head.bbox_roi_extractor(feats, rois)
    assert all(isinstance(m, TorchvisionRoIAlign) for m in extractor.roi_layers)
    assert not any(isinstance(m, RoIAlign) for m in model.modules())
    torch.testing.assert_close(after, before, rtol=0, atol=1e-6)
    assert model.backbone.deployed
