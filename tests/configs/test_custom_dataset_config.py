"""The fine-tuning example (configs/faster_rcnn_shufflenet1x_fpn_custom_dataset.py) trains and
evaluates through the tools on a COCO-format dataset of its own classes: two, where COCO has 80.

The dataset is the generated shapes data relabelled into the config's two classes; the
images are small and the run is two iterations from scratch, so the test checks the wiring
(classes, head size, metrics), not accuracy.
"""
import json
import os
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from shufflenet_det.datasets.synthetic_shapes import generate_shapes_dataset

from ..helpers import REPO

pytestmark = pytest.mark.slow
CONFIG = 'configs/faster_rcnn_shufflenet1x_fpn_custom_dataset.py'
SMALL = [
    'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
    'val_dataloader.persistent_workers=False', 'test_dataloader.num_workers=0',
    'test_dataloader.persistent_workers=False',
    # Small images instead of the config's 600 px (CPU test speed).
    'train_dataloader.dataset.pipeline.2.scale=(128,128)',
    'val_dataloader.dataset.pipeline.1.scale=(128,128)',
    'test_dataloader.dataset.pipeline.1.scale=(128,128)',
    'model.train_cfg.rcnn.sampler.num=64',
]


def run(*args):
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='2')
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, (f'{args[0]} failed ({proc.returncode}):\n'
                                  f'{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
    return proc


def config_classes() -> tuple:
    return tuple(Config.fromfile(str(REPO / CONFIG)).metainfo['classes'])


@pytest.fixture(scope='module')
def two_class_dataset(tmp_path_factory):
    """The shapes data with its five classes merged into the config's two (circles are the
    first class, every other shape the second), under the file names the config reads."""
    root = tmp_path_factory.mktemp('my_dataset')
    first, second = config_classes()
    for split, ann_file in generate_shapes_dataset(str(root), num_train=4, num_val=2,
                                                   image_size=128).items():
        with open(ann_file) as f:
            coco = json.load(f)
        circle = next(c['id'] for c in coco['categories'] if c['name'] == 'circle')
        coco['categories'] = [dict(id=1, name=first), dict(id=2, name=second)]
        for ann in coco['annotations']:
            ann['category_id'] = 1 if ann['category_id'] == circle else 2
        (root / 'annotations' / f'{split}.json').write_text(json.dumps(coco))
        os.remove(ann_file)
    return root


def test_the_config_states_its_own_classes():
    cfg = Config.fromfile(str(REPO / CONFIG))
    classes = config_classes()
    assert len(classes) == 2
    assert cfg.model.roi_head.bbox_head.num_classes == len(classes)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert tuple(cfg[loader].dataset.metainfo['classes']) == classes, loader
        assert cfg[loader].dataset.data_root == cfg.data_root, loader


def test_trains_and_evaluates_on_a_two_class_dataset(two_class_dataset, tmp_path):
    work = tmp_path / 'work'
    # No ImageNet checkpoint in the tests: --from-scratch, the documented choice.
    run('tools/train.py', CONFIG, '--from-scratch', '--work-dir', str(work),
        '--data-root', str(two_class_dataset), '--cfg-options', 'train_cfg.max_epochs=1',
        'train_cfg.val_interval=1', *SMALL)
    checkpoint = torch.load(work / 'epoch_1.pth', map_location='cpu', weights_only=False)
    weights = checkpoint['state_dict']
    # Two classes and the background score; class-specific boxes, four numbers per class.
    assert weights['roi_head.bbox_head.fc_cls.weight'].shape[0] == 3
    assert weights['roi_head.bbox_head.fc_reg.weight'].shape[0] == 8
    assert tuple(checkpoint['meta']['dataset_meta']['classes']) == config_classes()

    run('tools/test.py', CONFIG, str(work / 'epoch_1.pth'), '--work-dir', str(tmp_path / 'test'),
        '--data-root', str(two_class_dataset), '--cfg-options', *SMALL)
    metrics = json.loads((tmp_path / 'test' / 'metrics.json').read_text())
    assert 0.0 <= metrics['coco/bbox_mAP'] <= 1.0
    assert metrics['count/images'] == 2  # the two held-out images of this dataset were read
