import pytest
import torch

from shufflenet_det.apis import check_neck_in_channels, prepare_config

from ..helpers import REPO, load_tool


def test_a_neck_that_does_not_fit_the_backbone_is_named_with_both_lists():
    model = dict(backbone=dict(type='ShuffleNetV1', groups=3, widen_factor=1.0,
                               out_indices=(0, 1, 2)),
                 neck=dict(type='FPN', in_channels=[480, 960, 1920], out_channels=64,
                           num_outs=4))
    with pytest.raises(ValueError, match=r'model\.neck \(FPN\) in_channels=\[480, 960, 1920\] '
                                         r'do not match the backbone\'s out_channels='
                                         r'\[240, 480, 960\] \(ShuffleNetV1 groups=3, '
                                         r'widen_factor=1\.0, out_indices=\(0, 1, 2\)\)'):
        check_neck_in_channels(model)
    model['neck']['in_channels'] = [240, 480, 960]
    check_neck_in_channels(model)  # fits


def test_a_backbone_numbered_from_the_stem_is_refused_naming_the_stages():
    model = dict(backbone=dict(type='ShuffleNetV1', out_indices=(1, 2, 3)),
                 neck=dict(type='FPN', in_channels=[240, 480, 960], out_channels=64, num_outs=4))
    with pytest.raises(ValueError, match=r'model\.backbone \(ShuffleNetV1\): out_indices must be '
                                         r'.*0 = Stage 2, 1 = Stage 3, 2 = Stage 4\), '
                                         r'got \(1, 2, 3\)'):
        check_neck_in_channels(model)


def test_a_backbone_without_out_indices_is_named_with_its_default():
    model = dict(backbone=dict(type='ShuffleNetV1', groups=3),
                 neck=dict(type='FPN', in_channels=[240, 480, 960], out_channels=64, num_outs=4))
    with pytest.raises(ValueError, match=r'out_channels=\[960\] \(ShuffleNetV1 groups=3, '
                                         r'out_indices=\(2,\) by default\)'):
        check_neck_in_channels(model)


def test_prepare_config_checks_the_wiring_before_anything_is_built():
    config = str(REPO / 'configs/faster_rcnn_shufflenet2x_fpn_coco.py')
    prepare_config(config)
    with pytest.raises(ValueError, match=r'in_channels=\[10, 20\] do not match the backbone\'s '
                                         r'out_channels=\[960, 1920\]'):
        prepare_config(config, cfg_options={'model.neck.in_channels': [10, 20]})


def test_backbones_without_out_channels_are_not_checked():
    model = dict(backbone=dict(type='ResNet', depth=18, out_indices=(0, 1, 2, 3)),
                 neck=dict(type='FPN', in_channels=[1, 2, 3, 4], out_channels=8, num_outs=4))
    check_neck_in_channels(model)


def test_train_tool_stops_on_a_mismatched_neck_before_building_anything(tmp_path, capsys):
    train = load_tool('train')
    config = str(REPO / 'configs/faster_rcnn_shufflenet_demo.py')
    code = train.main([config, '--work-dir', str(tmp_path / 'work'), '--cfg-options',
                       'model.neck.in_channels=[1,2,3]'])
    assert code == 2
    assert "in_channels=[1, 2, 3] do not match the backbone's out_channels=[120, 240, 480]" \
        in capsys.readouterr().err
    assert not (tmp_path / 'work').exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason='the refusal is for CPU hosts')
def test_amp_without_a_gpu_is_one_line_and_status_2(capsys):
    train_tool = load_tool('train')
    status = train_tool.main([str(REPO / 'configs/faster_rcnn_shufflenet_demo.py'), '--amp',
                              '--data-root', '/nonexistent'])
    assert status == 2
    assert capsys.readouterr().err.strip() == (
        "error: --amp needs a GPU: MMEngine's AmpOptimWrapper trains on CUDA (or NPU, MLU, "
        'MUSA) devices only, and torch sees none here')
