"""ImageNet-style pretraining through the real tools on a tiny generated image folder,
then the hand-off to a detector."""
import json

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from PIL import Image

from shufflenet_det.checkpoint import load_checkpoint_file

from ..helpers import REPO, run

pytestmark = pytest.mark.slow
CONFIG = str(REPO / 'configs/pretrain/shufflenet1x_g3_imagenet.py')
# Four classes told apart by their dominant colour, under noise and random patches.
COLOURS = {'n0_red': (200, 40, 40), 'n1_green': (40, 180, 60), 'n2_blue': (40, 60, 200),
           'n3_yellow': (210, 200, 40)}
SMALL = ['train_dataloader.batch_size=16', 'train_dataloader.num_workers=0',
         'train_dataloader.persistent_workers=False', 'train_dataloader.pin_memory=False',
         'val_dataloader.batch_size=16', 'val_dataloader.num_workers=0',
         'val_dataloader.persistent_workers=False', 'val_dataloader.pin_memory=False',
         'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
         'train_dataloader.dataset.pipeline.0.size=64', 'val_dataloader.dataset.pipeline.0.size=72',
         'val_dataloader.dataset.pipeline.1.size=64', 'test_dataloader.dataset.pipeline.0.size=72',
         'test_dataloader.dataset.pipeline.1.size=64', 'default_hooks.logger.interval=10']


def make_image_folder(root, per_class, seed):
    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = rng.normal(colour, 45, (80, 96, 3))
            for _ in range(3):  # distractor patches of random colours
                x, y = rng.integers(0, 70, 2)
                img[y:y + 20, x:x + 20] = rng.uniform(0, 255, 3)
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / name / f'{i}.JPEG')


@pytest.fixture(scope='module')
def imagenet(tmp_path_factory):
    root = tmp_path_factory.mktemp('imagenet')
    make_image_folder(root / 'train', 32, seed=0)
    make_image_folder(root / 'val', 10, seed=1)
    return root


@pytest.fixture(scope='module')
def pretrained(imagenet, tmp_path_factory):
    work = tmp_path_factory.mktemp('pretrain')
    run('tools/train.py', CONFIG, '--work-dir', str(work), '--data-root', str(imagenet),
        '--auto-scale-lr', '--cfg-options', 'model.num_classes=4', 'train_cfg.max_iters=64',
        'train_cfg.val_interval=64', 'param_scheduler.0.end=64',
        'default_hooks.checkpoint.interval=64', 'auto_scale_lr.base_batch_size=64',
        'custom_hooks.2.num_iters=4', *SMALL)
    return work


def test_short_training_is_clearly_above_chance(pretrained):
    log = next(pretrained.glob('*/vis_data/scalars.json')).read_text().splitlines()
    val = [json.loads(line) for line in log if 'accuracy/top1' in line]
    assert len(val) == 1
    assert val[0]['accuracy/top1'] >= 70.0  # chance is 25%


def test_final_checkpoint_has_recalibrated_bn_and_its_input_convention(pretrained):
    ckpt = load_checkpoint_file(pretrained / 'iter_64.pth')  # safe loading, digest checked
    assert ckpt['meta']['input_convention'] == dict(mean=[0.0] * 3, std=[1.0] * 3,
                                                    bgr_to_rgb=False)
    log = next(pretrained.glob('*/*.log')).read_text()
    assert 'BNRecalibrationHook: re-estimating' in log and 'over 4 batches' in log


def test_evaluation_through_the_test_tool(pretrained, imagenet, tmp_path):
    run('tools/test.py', CONFIG, str(pretrained / 'iter_64.pth'), '--work-dir', str(tmp_path),
        '--data-root', str(imagenet), '--out', str(tmp_path / 'preds.pkl'),
        '--cfg-options', 'model.num_classes=4', *SMALL)
    metrics = json.loads((tmp_path / 'metrics.json').read_text())
    assert metrics['accuracy/top1'] >= 70.0 and metrics['accuracy/top5'] == 100.0
    assert (tmp_path / 'preds.pkl').is_file()


@pytest.mark.parametrize('detector', ['faster_rcnn_shufflenet1x_coco.py',
                                      'faster_rcnn_shufflenet1x_fpn_coco.py'])
def test_detector_initialises_from_the_pretraining_checkpoint(pretrained, tmp_path, detector,
                                                             mmlog):
    exported = tmp_path / 'backbone.pth'
    proc = run('tools/export_backbone.py', str(pretrained / 'iter_64.pth'), str(exported))
    assert 'backbone tensors' in proc.stdout
    source = load_checkpoint_file(pretrained / 'iter_64.pth')['state_dict']
    backbone_keys = [k for k in source if k.startswith('backbone.')]
    assert set(torch.load(exported)['state_dict']) == set(backbone_keys)
    for checkpoint in (pretrained / 'iter_64.pth', exported):
        cfg = Config.fromfile(str(REPO / 'configs' / detector))
        cfg.model.init_cfg.checkpoint = str(checkpoint)
        model = MODELS.build(cfg.model)
        model.init_weights()  # strict: raises on any missing or unexpected key
        assert f'loaded {len(backbone_keys)} tensors from {checkpoint}' in mmlog.text
        for k, v in model.backbone.state_dict().items():
            assert torch.equal(v, source[f'backbone.{k}']), k


def test_export_refuses_a_file_without_a_backbone(tmp_path):
    torch.save({'state_dict': {'head.fc.weight': torch.zeros(2, 2)}}, tmp_path / 'head.pth')
    proc = run('tools/export_backbone.py', str(tmp_path / 'head.pth'), str(tmp_path / 'o.pth'),
               check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'head.pth'} has no keys starting with prefix 'backbone.'; its keys "
        "start with ['head.']")
    assert not (tmp_path / 'o.pth').exists()
