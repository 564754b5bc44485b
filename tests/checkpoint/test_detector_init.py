"""A detector initialised from an ImageNet checkpoint: strict, together, convention-checked."""
from pathlib import Path

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config

from shufflenet_det.checkpoint import MEGVII_INPUT_CONVENTION, OPENMMLAB_INPUT_CONVENTION
from shufflenet_det.errors import ConfigError
from shufflenet_det.models import ShuffleNetClassifier

REPO = Path(__file__).resolve().parents[2]


def _imagenet_checkpoint(path, widen_factor=1.0, convention=MEGVII_INPUT_CONVENTION, drop=(),
                         shuffle_order=None, bare=False):
    """A random classifier file; ``bare``: its state dict alone, with no ``meta``."""
    classifier = ShuffleNetClassifier(backbone=dict(
        type='ShuffleNetV1', groups=3, widen_factor=widen_factor, out_indices=(2, )))
    with torch.no_grad():
        for v in classifier.state_dict().values():
            if v.is_floating_point():
                v.uniform_(0.5, 1.5)
    state = {k: v for k, v in classifier.state_dict().items() if k not in drop}
    meta = {} if convention is None else dict(input_convention=convention)
    if shuffle_order is not None:
        meta['arch'] = dict(type='ShuffleNetV1', groups=3, widen_factor=widen_factor,
                            shuffle_order=shuffle_order)
    torch.save(state if bare else dict(state_dict=state, meta=meta), path)
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
                                         r'116\.28, 103\.53\].*bgr_to_rgb=True \(recorded in '
                                         r'the file\'s meta\), but the detector\'s '
                                         r'data_preprocessor uses mean=\[0\.0, 0\.0, 0\.0\], '
                                         r'std=\[1\.0, 1\.0, 1\.0\], bgr_to_rgb=False'):
        _detector('faster_rcnn_shufflenet1x_fpn_coco.py', path).init_weights()


OPENMMLAB_PREPROCESSOR = {'model.data_preprocessor.mean': [123.675, 116.28, 103.53],
                          'model.data_preprocessor.std': [58.395, 57.12, 57.375],
                          'model.data_preprocessor.bgr_to_rgb': True}


def test_openmmlab_release_without_meta_is_told_from_its_layout_and_checked(tmp_path, mmlog):
    path = tmp_path / 'shufflenet_v1_batch1024_imagenet.pth'
    state = _imagenet_checkpoint(path, bare=True)  # as OpenMMLab publishes it: no convention
    assert set(torch.load(path, weights_only=True)) == set(state)  # no meta, no state_dict
    model = _detector('faster_rcnn_shufflenet1x_fpn_coco.py', path)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ConfigError, match=r"bgr_to_rgb=True \(OpenMMLab's, told from the "
                                          r"file's layout\), but the detector's "
                                          r'data_preprocessor uses mean=\[0\.0'):
        model.init_weights()
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    model = _detector('faster_rcnn_shufflenet1x_fpn_coco.py', path, **OPENMMLAB_PREPROCESSOR)
    model.init_weights()
    assert torch.equal(model.backbone.conv1.conv.weight, state['backbone.conv1.conv.weight'])
    assert "its layout is that of OpenMMLab's ShuffleNetV1 classifiers" in mmlog.text


def test_a_file_of_unknown_convention_is_refused_until_the_init_cfg_states_it(tmp_path):
    path = tmp_path / 'backbone_only.pth'
    state = _imagenet_checkpoint(path, bare=True)
    torch.save({k: v for k, v in state.items() if k.startswith('backbone.')}, path)
    with pytest.raises(ConfigError) as error:
        _detector('faster_rcnn_shufflenet1x_coco.py', path).init_weights()
    message = str(error.value)
    assert f"{path} (prefix 'backbone.') records no input convention" in message
    assert "input_convention='megvii' (BGR 0-255, not normalised), 'openmmlab'" in message
    assert 'tools/convert_checkpoint.py' in message
    model = _detector('faster_rcnn_shufflenet1x_coco.py', path,
                      **{'model.init_cfg.input_convention': 'megvii'})
    model.init_weights()
    assert torch.equal(model.roi_head.shared_head.stage4[0].g_conv_1x1_expand.conv.weight,
                       state['backbone.layers.2.0.g_conv_1x1_expand.conv.weight'])
    with pytest.raises(ConfigError, match=r'bgr_to_rgb=True \(stated in the init_cfg\), but'):
        _detector('faster_rcnn_shufflenet1x_coco.py', path,
                  **{'model.init_cfg.input_convention': 'openmmlab'}).init_weights()
    with pytest.raises(ConfigError, match=r"input_convention='rgb' is not known; state it"):
        _detector('faster_rcnn_shufflenet1x_coco.py', path,
                  **{'model.init_cfg.input_convention': 'rgb'}).init_weights()


def test_a_stated_convention_may_not_contradict_the_recorded_one(tmp_path):
    path = tmp_path / 'converted.pth'
    _imagenet_checkpoint(path)  # records Megvii's
    with pytest.raises(ConfigError, match=r"records input_convention=.*'bgr_to_rgb': False\} "
                                          r'in its meta, but the init_cfg states '
                                          r"input_convention=.*'bgr_to_rgb': True\}"):
        _detector('faster_rcnn_shufflenet1x_coco.py', path,
                  **{'model.init_cfg.input_convention': 'openmmlab'}).init_weights()


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
