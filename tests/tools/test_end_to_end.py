"""Train, resume, test and draw through the real command-line tools, on generated images."""
import json
import os
import pickle
import subprocess
import sys

import pytest
import torch

from shufflenet_det.datasets.synthetic_shapes import CLASSES, generate_shapes_dataset

from ..helpers import REPO

pytestmark = pytest.mark.slow
CONFIG = str(REPO / 'configs/faster_rcnn_shufflenet_demo.py')
SMALL = ['train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
         'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
         'val_dataloader.persistent_workers=False', 'test_dataloader.num_workers=0',
         'test_dataloader.persistent_workers=False', 'default_hooks.checkpoint.interval=1',
         'default_hooks.logger.interval=1', 'default_hooks.checkpoint.max_keep_ckpts=-1']


def run(*args, check=True):
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='2')
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args[0]} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n'
                             f'{proc.stderr[-3000:]}')
    return proc


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes')
    generate_shapes_dataset(str(root), num_train=16, num_val=6, image_size=128)
    return root


@pytest.fixture(scope='module')
def trained(shapes, tmp_path_factory):
    work = tmp_path_factory.mktemp('work')
    run('tools/train.py', CONFIG, '--work-dir', str(work), '--data-root', str(shapes),
        '--cfg-options', 'train_cfg.max_epochs=2', 'train_cfg.val_interval=2', *SMALL)
    return work


def test_training_writes_checkpoints_and_evaluates(trained):
    assert (trained / 'epoch_1.pth').is_file() and (trained / 'epoch_2.pth').is_file()
    assert (trained / 'last_checkpoint').read_text().strip().endswith('epoch_2.pth')
    scalars = next(trained.glob('*/vis_data/scalars.json')).read_text().splitlines()
    evaluated = [json.loads(line) for line in scalars if 'coco/bbox_mAP' in line]
    assert len(evaluated) == 1 and 0.0 <= evaluated[0]['coco/bbox_mAP'] <= 1.0


def test_resume_continues_from_the_last_checkpoint(trained, shapes):
    proc = run('tools/train.py', CONFIG, '--work-dir', str(trained), '--data-root', str(shapes),
               '--resume', '--cfg-options', 'train_cfg.max_epochs=3', 'train_cfg.val_interval=3',
               *SMALL)
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 2' in log
    assert (trained / 'epoch_3.pth').is_file()


def test_test_tool_writes_metrics_predictions_and_drawings(trained, shapes, tmp_path):
    out = tmp_path / 'results.pkl'
    run('tools/test.py', CONFIG, str(trained / 'epoch_2.pth'), '--work-dir', str(tmp_path),
        '--data-root', str(shapes), '--out', str(out), '--show-dir', str(tmp_path / 'show'),
        '--cfg-options', *SMALL)
    metrics = json.loads((tmp_path / 'metrics.json').read_text())
    assert {'coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75', 'coco/bbox_mAP_s',
            'coco/bbox_mAP_m', 'coco/bbox_mAP_l'} <= set(metrics)
    with open(out, 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == 6 and 'pred_instances' in predictions[0]
    assert len(list((tmp_path / 'show').glob('*.png'))) == 6
    assert not list(tmp_path.glob('.*partial*'))


def test_test_tool_refuses_a_missing_checkpoint(tmp_path):
    proc = run('tools/test.py', CONFIG, str(tmp_path / 'nope.pth'), check=False)
    assert proc.returncode == 2
    assert f'checkpoint file not found: {tmp_path / "nope.pth"}' in proc.stderr


def test_demo_tool_draws_detections(trained, shapes, tmp_path):
    out = tmp_path / 'drawn.png'
    proc = run('tools/demo.py', str(shapes / 'val/00000.png'), CONFIG,
               str(trained / 'epoch_2.pth'), '--out-file', str(out), '--score-thr', '0.05')
    assert out.is_file() and out.stat().st_size > 1000
    assert 'detections with score >= 0.05 drawn to' in proc.stdout


def test_dist_train_launches_torchrun_with_the_pytorch_launcher(tmp_path):
    # The multi-node settings, checked through a stand-in interpreter that records the
    # arguments (test_resume_and_distributed.py runs the script for real on one node).
    fake = tmp_path / 'python'
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$ARGS_FILE"\n')
    fake.chmod(0o755)
    env = dict(os.environ, PYTHON=str(fake), ARGS_FILE=str(tmp_path / 'args'), NNODES='2',
               NODE_RANK='1', MASTER_ADDR='10.0.0.7', PORT='29777')
    subprocess.run(['bash', 'tools/dist_train.sh', CONFIG, '4', '--amp'], cwd=REPO, env=env,
                   check=True, timeout=60)
    args = (tmp_path / 'args').read_text().split('\n')[:-1]
    assert args == ['-m', 'torch.distributed.run', '--nnodes=2', '--node_rank=1',
                    '--master_addr=10.0.0.7', '--nproc_per_node=4', '--master_port=29777',
                    str(REPO / 'tools/train.py'), CONFIG, '--launcher', 'pytorch', '--amp']


def test_test_tool_refuses_a_checkpoint_with_missing_weights(trained, shapes, tmp_path):
    ckpt = torch.load(trained / 'epoch_2.pth')
    del ckpt['state_dict']['roi_head.bbox_head.fc_cls.weight']
    torch.save(ckpt, tmp_path / 'partial.pth')
    proc = run('tools/test.py', CONFIG, str(tmp_path / 'partial.pth'), '--work-dir',
               str(tmp_path), '--data-root', str(shapes), '--cfg-options', *SMALL, check=False)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f'error: {tmp_path / "partial.pth"} does not match FasterRCNN; '
                           'nothing was loaded. 1 missing keys: roi_head.bbox_head.fc_cls.weight')
    assert not (tmp_path / 'metrics.json').exists()


def test_det_inferencer_runs_the_trained_checkpoint_on_image_files(trained, shapes, tmp_path):
    from mmdet.apis import DetInferencer
    inferencer = DetInferencer(model=CONFIG, weights=str(trained / 'epoch_2.pth'), device='cpu',
                               show_progress=False)
    assert tuple(inferencer.model.dataset_meta['classes']) == tuple(CLASSES)
    result = inferencer(str(shapes / 'val'), out_dir=str(tmp_path / 'out'), pred_score_thr=0.05,
                        no_save_pred=False)
    assert len(result['predictions']) == 6
    assert len(list((tmp_path / 'out' / 'vis').glob('*.png'))) == 6
    assert len(list((tmp_path / 'out' / 'preds').glob('*.json'))) == 6


def test_train_tool_names_a_missing_config(tmp_path):
    proc = run('tools/train.py', 'configs/missing.py', check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == 'error: config file not found: configs/missing.py'


def test_demo_tool_names_a_file_that_is_not_an_image(trained, tmp_path):
    text = tmp_path / 'notes.png'
    text.write_text('not an image')
    proc = run('tools/demo.py', str(text), CONFIG, str(trained / 'epoch_2.pth'), '--out-file',
               str(tmp_path / 'drawn.png'), check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == \
        f'error: cannot decode image {text}: not an image, or truncated'
    assert not (tmp_path / 'drawn.png').exists()


def test_test_tool_reports_a_model_without_detections_plainly(trained, shapes, tmp_path):
    # A score threshold no detection reaches: the model detects nothing.
    proc = run('tools/test.py', CONFIG, str(trained / 'epoch_2.pth'), '--work-dir',
               str(tmp_path), '--data-root', str(shapes), '--cfg-options', *SMALL,
               'model.test_cfg.rcnn.score_thr=1.01')
    metrics = json.loads((tmp_path / 'metrics.json').read_text())
    assert metrics['count/images'] == 6 and metrics['count/detections'] == 0
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75', 'coco/bbox_mAP_s',
                'coco/bbox_mAP_m', 'coco/bbox_mAP_l'):
        assert metrics[key] == 0.0
    assert 'warning: 0 detections on 6 images; every AP is 0.0' in proc.stdout


@pytest.fixture(scope='module')
def exported(trained, shapes, tmp_path_factory):
    out = tmp_path_factory.mktemp('onnx') / 'demo.onnx'
    proc = run('tools/export_onnx.py', CONFIG, str(trained / 'epoch_2.pth'), '--out', str(out),
               '--int8', '--calib-dir', str(shapes / 'train'), '--calib-num', '8')
    assert 'default ONNX domain only' in proc.stdout and 'calibration: 8/8 images' in proc.stdout
    return out


def test_onnx_runtime_detector_returns_what_inference_detector_returns(trained, exported,
                                                                       shapes):
    import numpy as np
    from mmdet.apis import inference_detector
    from mmengine.registry import init_default_scope
    from PIL import Image

    from shufflenet_det.checkpoint import load_detector
    from shufflenet_det.deploy import ONNXRuntimeDetector
    init_default_scope('mmdet')
    # Not the test scale: the pipeline resizes it, and boxes come back in its pixels.
    image = np.asarray(Image.open(shapes / 'val' / '00001.png'))
    image = np.ascontiguousarray(np.repeat(np.repeat(image[:, :, ::-1], 2, 0), 3, 1)[:300, :350])
    expected = inference_detector(load_detector(CONFIG, str(trained / 'epoch_2.pth')), image)
    got = ONNXRuntimeDetector(str(exported))(image)
    assert got.ori_shape == expected.ori_shape == (256, 350)
    e, g = expected.pred_instances, got.pred_instances
    assert len(g.scores) == len(e.scores) > 0
    order_e, order_g = e.scores.argsort(descending=True), g.scores.argsort(descending=True)
    assert torch.allclose(g.scores[order_g], e.scores[order_e], atol=1e-4)
    assert torch.allclose(g.bboxes[order_g], e.bboxes[order_e], atol=1e-2)
    assert torch.equal(g.labels[order_g], e.labels[order_e])


def test_demo_and_test_tools_take_the_onnx_files(exported, shapes, tmp_path):
    out = tmp_path / 'drawn.png'
    proc = run('tools/demo.py', str(shapes / 'val/00000.png'), CONFIG, str(exported),
               '--out-file', str(out), '--score-thr', '0.05')
    assert out.is_file() and 'detections with score >= 0.05 drawn to' in proc.stdout
    for name in ('demo.onnx', 'demo_int8.onnx'):
        work = tmp_path / name
        run('tools/test.py', CONFIG, str(exported.parent / name), '--work-dir', str(work),
            '--data-root', str(shapes), '--cfg-options', *SMALL)
        metrics = json.loads((work / 'metrics.json').read_text())
        assert metrics['count/images'] == 6 and 0.0 <= metrics['coco/bbox_mAP'] <= 1.0


def test_onnx_runtime_detector_works_in_a_plain_script(exported, shapes):
    script = ('import sys; from shufflenet_det.deploy import ONNXRuntimeDetector; '
              'result = ONNXRuntimeDetector(sys.argv[1], threads=1)(sys.argv[2]); '
              'print(tuple(result.ori_shape), len(result.pred_instances.scores), '
              'result.pred_instances.bboxes.shape[1])')
    proc = run('-c', script, str(exported), str(shapes / 'val/00002.png'))
    shape, count, columns = proc.stdout.strip().rsplit('\n', 1)[-1].rsplit(' ', 2)
    assert shape == '(128, 128)' and int(count) >= 0 and columns == '4'
