"""A detector initialised from an ImageNet checkpoint: strict, together, convention-checked."""
from pathlib import Path

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config

from shufflenet_det.checkpoint import MEGVII_INPUT_CONVENTION, OPENMMLAB_INPUT_CONVENTION
from shufflenet_det.models import ShuffleNetClassifier

REPO = Path(__file__).resolve().parents[2]


def _imagenet_checkpoint(path, widen_factor=1.0, convention=MEGVII_INPUT_CONVENTION, drop=(),
                         shuffle_order=None):
    classifier = ShuffleNetClassifier(backbone=dict(
        type='ShuffleNetV1', groups=3, widen_factor=widen_factor, out_indices=(3, )))
    with torch.no_grad():
        for v in classifier.state_dict().values():
            if v.is_floating_point():
                v.uniform_(0.5, 1.5)
    state = {k: v for k, v in classifier.state_dict().items() if k not in drop}
    meta = {} if convention is None else dict(input_convention=convention)
    if shuffle_order is not None:
        meta['arch'] = dict(type='ShuffleNetV1', groups=3, widen_factor=widen_factor,
                            shuffle_order=shuffle_order)
    torch.save(dict(state_dict=state, meta=meta), path)
    return state


def _detector(config, checkpoint, **cfg_options):
    cfg = Config.fromfile(str(REPO / 'configs' / config))
    cfg.model.init_cfg.checkpoint = str(checkpoint)
    cfg.merge_from_dict(cfg_options)
    return MODELS.build(cfg.model)


def test_c4_detector_takes_stage4_into_the_roi_head_and_everything_else_into_the_backbone(
        tmp_path, mmlog):
    path = tmp_path / 'imagenet_1x.pth'
    state = _imagenet_checkpoint(path)
    model = _detector('faster_rcnn_shufflenet1x_coco.py', path)
    model.init_weights()
    backbone_keys = [k for k in state if k.startswith('backbone.')]
    assert f'loaded {len(backbone_keys)} tensors' in mmlog.text
    assert 'into backbone and roi_head.shared_head' in mmlog.text
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, state[f'backbone.{k}']), k
    for k, v in model.roi_head.shared_head.stage4.state_dict().items():
        assert torch.equal(v, state[f'backbone.layers.2.{k}']), k
    # Every backbone tensor of the file went somewhere: nothing unused, nothing missing.
    loaded = len(model.backbone.state_dict()) + len(model.roi_head.shared_head.state_dict())
    assert loaded == len(backbone_keys)


def test_fpn_detector_takes_the_whole_backbone(tmp_path):
    path = tmp_path / 'imagenet_1x.pth'
    state = _imagenet_checkpoint(path)
    model = _detector('faster_rcnn_shufflenet1x_fpn_coco.py', path)
    model.init_weights()
    assert len(model.backbone.state_dict()) == len([k for k in state if k.startswith('backbone.')])
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, state[f'backbone.{k}']), k


def test_missing_stage4_tensor_fails_and_leaves_the_detector_untouched(tmp_path):
    path = tmp_path / 'partial.pth'
    _imagenet_checkpoint(path, drop=('backbone.layers.2.3.g_conv_1x1_expand.conv.weight', ))
    model = _detector('faster_rcnn_shufflenet1x_coco.py', path)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError, match=r'nothing was loaded\. 1 missing keys: '
                                           r'layers\.2\.3\.g_conv_1x1_expand\.conv\.weight'):
        model.init_weights()
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_a_checkpoint_of_another_width_is_refused(tmp_path):
    path = tmp_path / 'imagenet_2x.pth'
    _imagenet_checkpoint(path, widen_factor=2.0)
    with pytest.raises(RuntimeError, match=r'shape mismatches: conv1\.bn\.bias: checkpoint '
                                           r'\(48,\) vs model \(24,\)'):
        _detector('faster_rcnn_shufflenet1x_coco.py', path).init_weights()


def test_input_convention_must_match_the_data_preprocessor(tmp_path):
    path = tmp_path / 'openmmlab_style.pth'
    _imagenet_checkpoint(path, convention=OPENMMLAB_INPUT_CONVENTION)
    with pytest.raises(ValueError, match=r'trained on images normalised with mean=\[123\.675, '
                                         r'116\.28, 103\.53\].*bgr_to_rgb=True, but the '
                                         r'detector\'s data_preprocessor uses mean=\[0\.0, 0\.0, '
                                         r'0\.0\], std=\[1\.0, 1\.0, 1\.0\], bgr_to_rgb=False'):
        _detector('faster_rcnn_shufflenet1x_fpn_coco.py', path).init_weights()
    # A file without a recorded convention (e.g. OpenMMLab's own) is not second-guessed.
    _imagenet_checkpoint(path, convention=None)
    _detector('faster_rcnn_shufflenet1x_fpn_coco.py', path).init_weights()


def test_the_recorded_shuffle_order_must_match_backbone_and_c4_head(tmp_path):
    path = tmp_path / 'official_order.pth'
    state = _imagenet_checkpoint(path, shuffle_order='megvii')
    with pytest.raises(RuntimeError, match=r"holds weights for shuffle_order='megvii'.*but "
                                           r"model\.backbone is built with shuffle_order="
                                           r"'paper'"):
        _detector('faster_rcnn_shufflenet1x_coco.py', path).init_weights()
    with pytest.raises(RuntimeError, match=r"but model\.roi_head\.shared_head is built with "
                                           r"shuffle_order='paper'.*Set shuffle_order='megvii' "
                                           r"on model\.roi_head\.shared_head"):
        _detector('faster_rcnn_shufflenet1x_coco.py', path,
                  **{'model.backbone.shuffle_order': 'megvii'}).init_weights()
    model = _detector('faster_rcnn_shufflenet1x_coco.py', path,
                      **{'model.backbone.shuffle_order': 'megvii',
                         'model.roi_head.shared_head.shuffle_order': 'megvii'})
    model.init_weights()
    for k, v in model.roi_head.shared_head.stage4.state_dict().items():
        assert torch.equal(v, state[f'backbone.layers.2.{k}']), k
    assert all(u.shuffle_order == 'megvii' for u in model.roi_head.shared_head.stage4)


def test_a_classifier_checkpoint_on_a_c4_backbone_points_to_the_detector_initialiser(tmp_path):
    path = tmp_path / 'imagenet_1x.pth'
    _imagenet_checkpoint(path)
    cfg = Config.fromfile(str(REPO / 'configs/faster_rcnn_shufflenet1x_coco.py'))
    cfg.model.init_cfg = None
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(path), prefix='backbone.')
    model = MODELS.build(cfg.model)
    with pytest.raises(RuntimeError) as error:
        model.init_weights()
    message = str(error.value)
    assert '72 unexpected keys: layers.2.0.' in message
    assert 'in the C4 layout Stage 4 lives in the RoI head (roi_head.shared_head)' in message
    assert "model.init_cfg=dict(type='ShuffleNetPretrained', checkpoint=...)" in message
    assert 'strict=False would leave the RoI head\'s Stage 4 untrained' in message
    assert 'Pass strict=False' not in message
