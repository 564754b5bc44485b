"""faster_rcnn_shufflenet2x_coco.py trained through tools/train.py on a CUDA GPU: 300
iterations at the config's settings (batch 2, shorter side 600) on a generated COCO-layout
dataset of 640x640 images, killed and resumed once, evaluated with tools/test.py; and
300 iterations with --amp.

Skipped where torch sees no GPU. It takes minutes on a GPU: ``pytest -m gpu -s`` shows
the losses it reads.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from shufflenet_det.checkpoint import safe_torch_load
from shufflenet_det.datasets.synthetic_shapes import CLASSES, generate_shapes_dataset

from ..helpers import REPO

pytestmark = [pytest.mark.gpu, pytest.mark.slow]
CONFIG = 'configs/faster_rcnn_shufflenet2x_coco.py'
IMAGE_SIZE, TRAIN_IMAGES, VAL_IMAGES = 640, 40, 10
ITERS_PER_EPOCH = TRAIN_IMAGES // 2  # the config's 2 images per GPU
EPOCHS = 15  # 300 iterations in all
CHECKPOINT_EPOCHS = 5  # the kill comes after the first checkpoint, at iteration 100
SHAPES = [f'model.roi_head.bbox_head.num_classes={len(CLASSES)}',
          f'train_dataloader.dataset.metainfo.classes=({",".join(CLASSES)})',
          f'val_dataloader.dataset.metainfo.classes=({",".join(CLASSES)})',
          f'test_dataloader.dataset.metainfo.classes=({",".join(CLASSES)})',
          'train_dataloader.num_workers=2', 'val_dataloader.num_workers=2',
          'test_dataloader.num_workers=2', 'default_hooks.logger.interval=10',
          f'train_cfg.max_epochs={EPOCHS}', f'train_cfg.val_interval={EPOCHS}',
          f'default_hooks.checkpoint.interval={CHECKPOINT_EPOCHS}',
          # mmdet's 1x schedule steps the lr down at epochs 8 and 11 of 12
          'param_scheduler.1.milestones=[10,13]', f'param_scheduler.1.end={EPOCHS}']


@pytest.fixture(scope='module')
def coco_layout(tmp_path_factory):
    """The shapes dataset under COCO 2017's file names, which the config expects."""
    root = tmp_path_factory.mktemp('coco')
    generate_shapes_dataset(str(root), num_train=TRAIN_IMAGES, num_val=VAL_IMAGES,
                            image_size=IMAGE_SIZE)
    for split in ('train', 'val'):
        os.rename(root / split, root / f'{split}2017')
        os.rename(root / 'annotations' / f'instances_{split}.json',
                  root / 'annotations' / f'instances_{split}2017.json')
    return root


def tool(*args, **popen):
    command = [sys.executable, *args]
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    if popen:
        return subprocess.Popen(command, cwd=REPO, env=env, **popen)
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, f'{args[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return proc


def train_args(work, root, *extra):
    # No ImageNet checkpoint here: --from-scratch (without it the run stops, exit 2).
    return ['tools/train.py', CONFIG, '--from-scratch', '--work-dir', str(work), '--data-root',
            str(root), *extra, '--cfg-options', *SHAPES]


def logged_losses(work):
    """(iteration, loss) of every logged training step, across resumed runs."""
    rows = []
    for path in sorted(work.glob('*/vis_data/scalars.json')):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if 'loss' in record:
                rows.append((record['step'], record['loss']))
    return sorted(set(rows))


def falls(losses):
    first, last = losses[:5], losses[-5:]
    mean = lambda rows: sum(loss for _, loss in rows) / len(rows)  # noqa: E731
    return mean(last) < mean(first), mean(first), mean(last)


def test_300_iterations_killed_resumed_and_evaluated(coco_layout, tmp_path):
    work = tmp_path / 'work'
    with open(tmp_path / 'killed_run.log', 'w') as out:
        proc = tool(*train_args(work, coco_layout), stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 600
        while not (work / 'last_checkpoint').exists() and proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL, 'training ended before it was killed'
    assert (work / f'epoch_{CHECKPOINT_EPOCHS}.pth').is_file(), 'killed before the first checkpoint'
    killed_at = max(i for i, _ in logged_losses(work))

    resumed = tool(*train_args(work, coco_layout, '--resume'))
    log = resumed.stdout + resumed.stderr
    resumed_at = CHECKPOINT_EPOCHS * ITERS_PER_EPOCH
    assert f'resumed epoch: {CHECKPOINT_EPOCHS}, iter: {resumed_at}' in log
    losses = logged_losses(work)
    print(f'killed after iteration {killed_at}; losses {losses}')
    assert max(i for i, _ in losses) == EPOCHS * ITERS_PER_EPOCH
    went_down, before, after = falls(losses)
    assert went_down, f'the loss did not fall: {before:.3f} over the first 50 iterations, ' \
        f'{after:.3f} over the last 50'

    tool('tools/test.py', CONFIG, str(work / f'epoch_{EPOCHS}.pth'), '--data-root',
         str(coco_layout), '--work-dir', str(tmp_path / 'test'), '--cfg-options', *SHAPES)
    metrics = json.loads((tmp_path / 'test' / 'metrics.json').read_text())
    print(f'metrics after {EPOCHS * ITERS_PER_EPOCH} iterations: {metrics}')
    assert 0.0 <= metrics['coco/bbox_mAP'] <= 1.0


def test_300_iterations_with_amp(coco_layout, tmp_path):
    work = tmp_path / 'amp'
    tool(*train_args(work, coco_layout, '--amp'))
    losses = logged_losses(work)
    print(f'AMP losses {losses}')
    assert max(i for i, _ in losses) == EPOCHS * ITERS_PER_EPOCH
    optimizer = safe_torch_load(work / f'epoch_{EPOCHS}.pth')['optimizer']
    assert optimizer['loss_scaler']['scale'] > 0  # AmpOptimWrapper's dynamic loss scale
    went_down, before, after = falls(losses)
    assert went_down, f'the AMP loss did not fall: {before:.3f} -> {after:.3f}'
