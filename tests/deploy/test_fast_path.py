"""The detector-level fast path: every ShuffleNet module converted, RoIAlign swapped."""
import torch
from mmcv.ops import RoIAlign
from mmdet.registry import MODELS
from mmengine.config import Config
from torch import nn

from shufflenet_det.deploy import TorchvisionRoIAlign, deploy_detector, switch_model_to_deploy

from ..models.test_switch_to_deploy import trained_looking
from ..helpers import REPO


def test_detector_deploy_swaps_roialign_for_an_identical_kernel():
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
    assert model.backbone.deployed and not model.training


def test_c4_detector_predicts_the_same_after_deploy():
    from mmdet.testing import demo_mm_inputs
    cfg = Config.fromfile(str(REPO / 'configs/faster_rcnn_shufflenet1x_coco.py'))
    cfg.model.test_cfg.rpn.max_per_img = 20
    model = trained_looking(MODELS.build(cfg.model))
    data = model.data_preprocessor(demo_mm_inputs(batch_size=1, image_shapes=[(3, 128, 160)],
                                                  num_classes=80), False)
    with torch.no_grad():
        rpn_plain = model.rpn_head.predict(model.extract_feat(data['inputs']),
                                           data['data_samples'], rescale=False)[0]
        deploy_detector(model)
        assert model.backbone.deployed and model.roi_head.shared_head.deployed
        rpn_fast = model.rpn_head.predict(model.extract_feat(data['inputs']),
                                          data['data_samples'], rescale=False)[0]
    torch.testing.assert_close(rpn_fast.bboxes, rpn_plain.bboxes, rtol=1e-4, atol=1e-3)


def test_the_search_stops_at_modules_that_convert_themselves():
    calls = []

    class Converts(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Sequential(Leaf())

        def switch_to_deploy(self, **kwargs):
            calls.append(('outer', kwargs))

    class Leaf(nn.Module):
        def switch_to_deploy(self, **kwargs):
            calls.append(('leaf', kwargs))

    model = nn.Sequential(nn.Sequential(Converts()), Leaf(), nn.ReLU())
    assert switch_model_to_deploy(model, pointwise='conv') == 2
    assert calls == [('outer', dict(pointwise='conv')), ('leaf', dict(pointwise='conv'))]
