"""A config's ImageNet checkpoint: required unless training from scratch is chosen, and then
every BN layer and stage trains."""
import copy
from pathlib import Path

import pytest
from mmdet.registry import MODELS
from mmengine.config import Config
from torch.nn.modules.batchnorm import _BatchNorm

from shufflenet_det.checkpoint.pretrained import (check_pretrained_files,
                                                  configure_training_from_scratch, how_to_get,
                                                  pretrained_init_cfgs)
from shufflenet_det.errors import ConfigError, InputFileNotFoundError
from shufflenet_det.models import ShuffleNetV1

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted(p.name for p in (REPO / 'configs').glob('*.py'))
MODEL_CFGS = {name: Config.fromfile(str(REPO / 'configs' / name)).model for name in CONFIGS}
PRETRAINED = [c for c in CONFIGS if pretrained_init_cfgs(MODEL_CFGS[c])]


def test_every_coco_config_names_an_imagenet_checkpoint_and_none_lets_it_be_missing():
    coco = [c for c in CONFIGS if c.endswith('_coco.py')]
    assert len(coco) >= 9 and set(coco) <= set(PRETRAINED)
    for name in PRETRAINED:
        for where, init in pretrained_init_cfgs(MODEL_CFGS[name]):
            assert not init.get('missing_ok'), f'{name}: {where} has missing_ok'


@pytest.mark.parametrize('name', PRETRAINED)
def test_a_config_whose_checkpoint_is_missing_is_refused_with_how_to_get_it(name, tmp_path,
                                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)  # the configs' relative checkpoints/ paths: not here
    model_cfg = copy.deepcopy(MODEL_CFGS[name])
    (where, init), = pretrained_init_cfgs(model_cfg)
    path = init['checkpoint']
    with pytest.raises(InputFileNotFoundError) as error:
        check_pretrained_files(model_cfg)
    message = str(error.value)
    assert message.startswith(f'pretrained checkpoint {path} (model.init_cfg) not found. ')
    assert 'python tools/convert_checkpoint.py snetv1_group3_' in message
    assert message.count(path) == 2 and '--from-scratch' in message and '\n' not in message
    # The same message when the model is initialised outside tools/train.py.
    model = MODELS.build(model_cfg)
    with pytest.raises(InputFileNotFoundError, match='not found. To get it, download snetv1'):
        model.init_weights()


def test_how_to_get_names_the_official_file_of_the_checkpoint():
    assert how_to_get('checkpoints/shufflenet_v1_2x_g3_imagenet.pth') == (
        "download snetv1_group3_2.0x.pth.tar from Megvii's ShuffleNet-Series "
        '(https://1drv.ms/f/s!AgaP37NGYuEXhRfQxHRseR7eSxXo, folder ShuffleNetV1/) and run: '
        'python tools/convert_checkpoint.py snetv1_group3_2.0x.pth.tar '
        'checkpoints/shufflenet_v1_2x_g3_imagenet.pth')
    assert 'snetv1_group8_0.5x.pth.tar' in how_to_get('shufflenet_v1_0.5x_g8_imagenet.pth')
    assert 'convert_checkpoint.py snetv1_groupG_Wx.pth.tar mine.pth' in how_to_get('mine.pth')


@pytest.mark.parametrize('name', ['faster_rcnn_shufflenet1x_coco.py',
                                  'faster_rcnn_shufflenet1x_fpn_coco.py'])
def test_from_scratch_drops_the_checkpoint_and_trains_every_bn_layer_and_stage(name, mmlog,
                                                                               tmp_path,
                                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromfile(str(REPO / 'configs' / name))
    before = MODELS.build(cfg.model)
    assert before.backbone.norm_eval and before.backbone.frozen_stages == 0  # the trap
    changes = configure_training_from_scratch(cfg.model)
    assert changes[0] == 'model.init_cfg: checkpoints/shufflenet_v1_1x_g3_imagenet.pth not loaded'
    assert 'model.backbone: norm_eval=False, frozen_stages=-1' in changes
    assert pretrained_init_cfgs(cfg.model) == []
    check_pretrained_files(cfg.model)  # nothing left to be missing
    model = MODELS.build(cfg.model)
    model.init_weights()  # no file needed
    model.train()
    assert model.backbone.norm_eval is False and model.backbone.frozen_stages == -1
    assert all(p.requires_grad for p in model.parameters())
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert norms and all(m.training for m in norms)
    if 'fpn' not in name:
        assert 'model.roi_head.shared_head: norm_eval=False' in changes
        assert model.roi_head.shared_head.norm_eval is False


def test_missing_ok_is_refused_where_bn_statistics_or_stages_are_fixed(tmp_path, mmlog):
    missing = str(tmp_path / 'shufflenet_v1_1x_g3_imagenet.pth')
    init_cfg = dict(type='Pretrained', checkpoint=missing, prefix='backbone.', missing_ok=True)
    with pytest.raises(ConfigError) as error:
        ShuffleNetV1(frozen_stages=0, norm_eval=True, init_cfg=init_cfg).init_weights()
    message = str(error.value)
    assert 'the module (ShuffleNetV1): norm_eval=True, frozen_stages=0' in message
    assert 'BN statistics would stay at 0 and 1' in message and '--from-scratch' in message
    # Everything trains: the fallback is allowed, and says so.
    backbone = ShuffleNetV1(init_cfg=init_cfg)
    backbone.init_weights()
    assert f'pretrained checkpoint {missing} (init_cfg of ShuffleNetV1) not found: training ' \
           'from scratch (missing_ok=True)' in mmlog.text
    assert backbone.conv1.conv.weight.std().item() == pytest.approx(0.01, rel=0.15)


def test_the_detector_initialiser_refuses_missing_ok_on_a_detector_with_norm_eval(tmp_path):
    cfg = Config.fromfile(str(REPO / 'configs/faster_rcnn_shufflenet1x_coco.py'))
    cfg.model.init_cfg.update(checkpoint=str(tmp_path / 'none.pth'), missing_ok=True)
    with pytest.raises(ConfigError, match=r'backbone \(ShuffleNetV1\): norm_eval=True, '
                                          r'frozen_stages=0; roi_head\.shared_head '
                                          r'\(ShuffleNetV1SharedHead\): norm_eval=True'):
        MODELS.build(cfg.model).init_weights()
