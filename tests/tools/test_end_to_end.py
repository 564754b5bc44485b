"""Train, resume, test and draw through the real command-line tools, on generated images.

The trained detector is the session's shared one (``trained_demo_detector`` in
tests/conftest.py): read-only here, copied where a test changes it."""
import json
import os
import shutil
import subprocess

import pytest
import torch

from shufflenet_det.checkpoint import atomic_save, load_checkpoint_file, mmengine_loads_safely
from shufflenet_det.datasets.synthetic_shapes import CLASSES

from ..helpers import (DEMO_CONFIG, REPO, TOOL_TIMEOUT_S, read_test_results, run,
                       shapes_training_options)

pytestmark = pytest.mark.slow
CONFIG = DEMO_CONFIG
SMALL = ['train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
         'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
         'val_dataloader.persistent_workers=False', 'test_dataloader.num_workers=0',
         'test_dataloader.persistent_workers=False', 'default_hooks.checkpoint.interval=1',
         'default_hooks.logger.interval=1', 'default_hooks.checkpoint.max_keep_ckpts=-1']


def test_training_writes_checkpoints_and_evaluates(trained_demo_detector, tested_demo_detector):
    trained = trained_demo_detector
    interval, last = trained.checkpoint_interval, trained.max_epochs
    assert sorted(p.name for p in trained.work_dir.glob('*.pth')) == \
        [f'epoch_{epoch}.pth' for epoch in range(interval, last + 1, interval)]
    assert not list(trained.work_dir.glob('.*partial*'))
    written = (trained.work_dir / 'last_checkpoint').read_text().strip()
    assert os.path.samefile(written, trained.checkpoint)
    scalars = next(trained.work_dir.glob('*/vis_data/scalars.json')).read_text().splitlines()
    evaluated = [json.loads(line) for line in scalars if 'coco/bbox_mAP' in line]
    assert len(evaluated) == 1 and evaluated[0]['step'] == last
    # The evaluation during training is tools/test.py's on the final checkpoint, whatever the
    # detector's quality on this CPU.
    metrics, _ = read_test_results(tested_demo_detector.work_dir, tested_demo_detector.predictions)
    coco = {k: v for k, v in metrics.items() if k.startswith('coco/')}
    assert len(coco) == 6 and {k: evaluated[0][k] for k in coco} == coco


def test_resume_continues_from_the_last_checkpoint(trained_demo_detector, tmp_path):
    trained = trained_demo_detector
    work = tmp_path / 'work'  # the shared run's last checkpoint, in a work dir of its own
    work.mkdir()
    shutil.copy(trained.checkpoint, work / trained.checkpoint.name)
    (work / 'last_checkpoint').write_text(str(work / trained.checkpoint.name))
    resumed_to = trained.max_epochs + 1
    # One more epoch, on the first 16 images (2 iterations) to keep it short, no evaluation.
    proc = run('tools/train.py', trained.config, '--work-dir', str(work), '--data-root',
               str(trained.data_root), '--resume', '--cfg-options',
               *shapes_training_options(trained.max_epochs, trained.checkpoint_interval),
               f'train_cfg.max_epochs={resumed_to}', f'train_cfg.val_interval={resumed_to + 1}',
               'default_hooks.checkpoint.interval=1', 'default_hooks.logger.interval=1',
               'train_dataloader.dataset.indices=16')
    log = proc.stdout + proc.stderr
    assert f'resumed epoch: {trained.max_epochs}' in log
    assert f'Epoch(train) [{resumed_to}][2/2]' in log
    assert f'Epoch(train) [{trained.max_epochs}]' not in log
    assert (work / f'epoch_{resumed_to}.pth').is_file()


def test_test_tool_writes_metrics_predictions_and_drawings(trained_demo_detector,
                                                           tested_demo_detector):
    trained, tested = trained_demo_detector, tested_demo_detector
    metrics, predictions = read_test_results(tested.work_dir, tested.predictions)
    assert {'coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75', 'coco/bbox_mAP_s',
            'coco/bbox_mAP_m', 'coco/bbox_mAP_l'} <= set(metrics)
    assert metrics['count/images'] == trained.num_val
    assert len(predictions) == trained.num_val and 'pred_instances' in predictions[0]
    assert len(list(tested.drawings.glob('*.png'))) == trained.num_val
    assert not list(tested.work_dir.glob('.*partial*'))


def test_test_tool_refuses_a_missing_checkpoint(tmp_path):
    proc = run('tools/test.py', CONFIG, str(tmp_path / 'nope.pth'), check=False)
    assert proc.returncode == 2
    assert f'checkpoint file not found: {tmp_path / "nope.pth"}' in proc.stderr


def test_demo_tool_draws_detections(trained_demo_detector, tmp_path):
    trained = trained_demo_detector
    out = tmp_path / 'drawn.png'
    proc = run('tools/demo.py', str(trained.data_root / 'val/00000.png'), trained.config,
               str(trained.checkpoint), '--out-file', str(out), '--score-thr', '0.05')
    assert out.is_file() and out.stat().st_size > 1000
    assert 'detections with score >= 0.05 drawn to' in proc.stdout


@pytest.mark.parametrize('script,args,tool_args', [
    ('dist_train.sh', [CONFIG, '4', '--amp'], ['train.py', CONFIG, '--launcher', 'pytorch',
                                               '--amp']),
    ('dist_test.sh', [CONFIG, 'model.pth', '4', '--out', 'r.pkl'],
     ['test.py', CONFIG, 'model.pth', '--launcher', 'pytorch', '--out', 'r.pkl']),
])
def test_dist_scripts_launch_torchrun_with_the_pytorch_launcher(tmp_path, script, args,
                                                                tool_args):
    # The multi-node settings, checked through a stand-in interpreter that records the
    # arguments (test_resume_and_distributed.py runs the scripts for real on one node).
    fake = tmp_path / 'python'
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$ARGS_FILE"\n')
    fake.chmod(0o755)
    env = dict(os.environ, PYTHON=str(fake), ARGS_FILE=str(tmp_path / 'args'), NNODES='2',
               NODE_RANK='1', MASTER_ADDR='10.0.0.7', PORT='29777')
    subprocess.run(['bash', f'tools/{script}', *args], cwd=REPO, env=env, check=True,
                   timeout=TOOL_TIMEOUT_S)
    recorded = (tmp_path / 'args').read_text().split('\n')[:-1]
    assert recorded == ['-m', 'torch.distributed.run', '--nnodes=2', '--node_rank=1',
                        '--master_addr=10.0.0.7', '--nproc_per_node=4', '--master_port=29777',
                        str(REPO / 'tools' / tool_args[0]), *tool_args[1:]]


def test_test_tool_refuses_a_checkpoint_with_missing_weights(trained_demo_detector, tmp_path):
    trained = trained_demo_detector
    ckpt = load_checkpoint_file(trained.checkpoint)
    del ckpt['state_dict']['roi_head.bbox_head.fc_cls.weight']
    atomic_save(ckpt, tmp_path / 'partial.pth')  # a sound file (its digest recorded anew)
    proc = run('tools/test.py', trained.config, str(tmp_path / 'partial.pth'), '--work-dir',
               str(tmp_path), '--data-root', str(trained.data_root), '--cfg-options', *SMALL,
               check=False)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f'error: {tmp_path / "partial.pth"} does not match FasterRCNN; '
                           'nothing was loaded. 1 missing keys: roi_head.bbox_head.fc_cls.weight')
    assert not (tmp_path / 'metrics.json').exists()


def test_det_inferencer_runs_the_trained_checkpoint_on_image_files(trained_demo_detector,
                                                                   tmp_path):
    from mmdet.apis import DetInferencer
    trained = trained_demo_detector
    with mmengine_loads_safely():  # torch's safe loader alone refuses MMEngine's HistoryBuffer
        inferencer = DetInferencer(model=trained.config, weights=str(trained.checkpoint),
                                   device='cpu', show_progress=False)
    assert tuple(inferencer.model.dataset_meta['classes']) == tuple(CLASSES)
    result = inferencer(str(trained.data_root / 'val'), out_dir=str(tmp_path / 'out'),
                        pred_score_thr=0.05, no_save_pred=False)
    assert len(result['predictions']) == trained.num_val
    assert len(list((tmp_path / 'out' / 'vis').glob('*.png'))) == trained.num_val
    assert len(list((tmp_path / 'out' / 'preds').glob('*.json'))) == trained.num_val


def test_train_tool_names_a_missing_config(tmp_path):
    proc = run('tools/train.py', 'configs/missing.py', check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == 'error: config file not found: configs/missing.py'


def test_demo_tool_names_a_file_that_is_not_an_image(trained_demo_detector, tmp_path):
    text = tmp_path / 'notes.png'
    text.write_text('not an image')
    proc = run('tools/demo.py', str(text), CONFIG, str(trained_demo_detector.checkpoint),
               '--out-file', str(tmp_path / 'drawn.png'), check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == \
        f'error: cannot decode image {text}: not an image, or truncated'
    assert not (tmp_path / 'drawn.png').exists()


def test_test_tool_reports_a_model_without_detections_plainly(trained_demo_detector, tmp_path):
    # A score threshold no detection reaches: the model detects nothing.
    trained = trained_demo_detector
    proc = run('tools/test.py', trained.config, str(trained.checkpoint), '--work-dir',
               str(tmp_path), '--data-root', str(trained.data_root), '--cfg-options', *SMALL,
               'model.test_cfg.rcnn.score_thr=1.01')
    metrics = json.loads((tmp_path / 'metrics.json').read_text())
    assert metrics['count/images'] == trained.num_val and metrics['count/detections'] == 0
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75', 'coco/bbox_mAP_s',
                'coco/bbox_mAP_m', 'coco/bbox_mAP_l'):
        assert metrics[key] == 0.0
    assert f'warning: 0 detections on {trained.num_val} images; every AP is 0.0' in proc.stdout


def test_export_checks_the_graph_and_calibrates_int8(exported_demo_detector):
    assert 'default ONNX domain only' in exported_demo_detector.log
    assert 'calibration: 8/8 images' in exported_demo_detector.log
    assert exported_demo_detector.onnx.is_file() and exported_demo_detector.int8.is_file()


def test_onnx_runtime_detector_returns_what_inference_detector_returns(trained_demo_detector,
                                                                       exported_demo_detector):
    import numpy as np
    from mmdet.apis import inference_detector
    from mmengine.registry import init_default_scope
    from PIL import Image

    from shufflenet_det.checkpoint import load_detector
    from shufflenet_det.deploy import ONNXRuntimeDetector
    init_default_scope('mmdet')
    trained = trained_demo_detector
    # Not the test scale: the pipeline resizes it, and boxes come back in its pixels.
    image = np.asarray(Image.open(trained.data_root / 'val' / '00001.png'))
    image = np.ascontiguousarray(np.repeat(np.repeat(image[:, :, ::-1], 2, 0), 3, 1)[:300, :350])
    expected = inference_detector(load_detector(trained.config, str(trained.checkpoint)), image)
    got = ONNXRuntimeDetector(str(exported_demo_detector.onnx))(image)
    assert got.ori_shape == expected.ori_shape == (256, 350)
    e, g = expected.pred_instances, got.pred_instances
    assert len(g.scores) == len(e.scores) > 0
    order_e, order_g = e.scores.argsort(descending=True), g.scores.argsort(descending=True)
    assert torch.allclose(g.scores[order_g], e.scores[order_e], atol=1e-4)
    assert torch.allclose(g.bboxes[order_g], e.bboxes[order_e], atol=1e-2)
    assert torch.equal(g.labels[order_g], e.labels[order_e])


def test_demo_and_test_tools_take_the_onnx_files(trained_demo_detector, exported_demo_detector,
                                                 tmp_path):
    trained, exported = trained_demo_detector, exported_demo_detector
    out = tmp_path / 'drawn.png'
    proc = run('tools/demo.py', str(trained.data_root / 'val/00000.png'), CONFIG,
               str(exported.onnx), '--out-file', str(out), '--score-thr', '0.05')
    assert out.is_file() and 'detections with score >= 0.05 drawn to' in proc.stdout
    for onnx_file in (exported.onnx, exported.int8):
        work = tmp_path / onnx_file.name
        run('tools/test.py', CONFIG, str(onnx_file), '--work-dir', str(work),
            '--data-root', str(trained.data_root), '--cfg-options', *SMALL)
        metrics = json.loads((work / 'metrics.json').read_text())
        assert metrics['count/images'] == trained.num_val
        assert 0.0 <= metrics['coco/bbox_mAP'] <= 1.0


def test_onnx_runtime_detector_works_in_a_plain_script(trained_demo_detector,
                                                       exported_demo_detector):
    script = ('import sys; from shufflenet_det.deploy import ONNXRuntimeDetector; '
              'result = ONNXRuntimeDetector(sys.argv[1], threads=1)(sys.argv[2]); '
              'print(tuple(result.ori_shape), len(result.pred_instances.scores), '
              'result.pred_instances.bboxes.shape[1])')
    proc = run('-c', script, str(exported_demo_detector.onnx),
               str(trained_demo_detector.data_root / 'val/00002.png'))
    shape, count, columns = proc.stdout.strip().rsplit('\n', 1)[-1].rsplit(' ', 2)
    assert shape == '(128, 128)' and int(count) >= 0 and columns == '4'
