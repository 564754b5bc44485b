"""Kill-and-resume equality, atomic checkpoints, and 2-process CPU training, through the tools."""
import os
import signal
import socket
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from shufflenet_det.checkpoint import safe_torch_load
from shufflenet_det.datasets.synthetic_shapes import generate_shapes_dataset

from ..helpers import LOADERS, REPO, TOOL_TIMEOUT_S, read_test_results, run
from .sigkill import ENV_VAR as SIGKILL_AFTER_ITER
from .test_end_to_end import CONFIG, SMALL

pytestmark = pytest.mark.slow
MAX_EPOCHS = 3
# 12 images in batches of 4: 3 iterations per epoch. Every epoch is checkpointed and only the
# newest kept (the delete-after-write path); validation after epoch 2 must not shift the
# training's random draws; deterministic kernels for a bit-exact comparison.
EXACT = [*SMALL, f'train_cfg.max_epochs={MAX_EPOCHS}', 'train_cfg.val_interval=2',
         'default_hooks.checkpoint.max_keep_ckpts=1', 'randomness.seed=0',
         'randomness.deterministic=True']
# The kill: after the first iteration of epoch 3, so after epoch 2's checkpoint (which
# replaced epoch 1's) and epoch 2's validation.
KILLED_AFTER_ITER = 7


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes')
    generate_shapes_dataset(str(root), num_train=12, num_val=4, image_size=128)
    return root


def _train_cmd(work, shapes, *extra, config=CONFIG):
    return [sys.executable, 'tools/train.py', config, '--work-dir', str(work), '--data-root',
            str(shapes), *extra, '--cfg-options', *EXACT]


def _weights(path):
    return safe_torch_load(path)['state_dict']  # the safe loader of this torch


def _killable_config(path) -> str:
    """The demo config with :class:`~tests.tools.sigkill.SigkillAfterIterationHook`, which
    does nothing unless its environment variable is set."""
    cfg = Config.fromfile(CONFIG)
    cfg.custom_imports.imports.append('tests.tools.sigkill')
    cfg.custom_hooks.append(dict(type='SigkillAfterIterationHook'))
    cfg.dump(str(path))
    return str(path)


def test_killed_and_resumed_run_ends_with_the_uninterrupted_weights(shapes, tmp_path):
    straight, killed = tmp_path / 'straight', tmp_path / 'killed'
    config = _killable_config(tmp_path / 'killable.py')
    importable = dict(PYTHONPATH=os.pathsep.join(filter(None, [str(REPO),
                                                               os.environ.get('PYTHONPATH')])))
    run(*_train_cmd(straight, shapes, config=config)[1:], env=importable)

    proc = run(*_train_cmd(killed, shapes, config=config)[1:], check=False,
               env={**importable, SIGKILL_AFTER_ITER: str(KILLED_AFTER_ITER)})
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (killed / 'last_checkpoint').read_text().endswith('epoch_2.pth')
    assert sorted(p.name for p in killed.glob('*.pth')) == ['epoch_2.pth']

    resumed = run(*_train_cmd(killed, shapes, '--resume', config=config)[1:], env=importable)
    log = resumed.stdout + resumed.stderr
    assert 'restored the random generator states of the checkpoint' in log
    assert 'resumed epoch: 2' in log

    final, reference = _weights(killed / f'epoch_{MAX_EPOCHS}.pth'), \
        _weights(straight / f'epoch_{MAX_EPOCHS}.pth')
    assert final.keys() == reference.keys()
    worst = max((final[k].double() - reference[k].double()).abs().max().item()
                for k in final if final[k].is_floating_point())
    print(f'largest difference, resumed vs uninterrupted weights: {worst:.3g}')
    assert worst <= 1e-6, f'resumed weights differ by {worst}'
    # The newest checkpoint only (max_keep_ckpts=1), and no partial files left behind.
    assert sorted(p.name for p in killed.glob('*.pth')) == [f'epoch_{MAX_EPOCHS}.pth']
    assert not list(killed.glob('.*partial*'))


def test_resume_refuses_a_checkpoint_with_a_pickled_object(shapes, tmp_path):
    import argparse
    bad = tmp_path / 'bad.pth'
    torch.save({'state_dict': {}, 'meta': {'epoch': 1, 'iter': 4},
                'message_hub': argparse.Namespace()}, bad)
    proc = run(*_train_cmd(tmp_path / 'work', shapes, '--resume', str(bad))[1:], check=False)
    assert proc.returncode == 2
    assert f'{bad} was refused: it contains an object of type argparse.Namespace' in proc.stderr


def test_resume_names_a_truncated_checkpoint(shapes, tmp_path):
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.ones(10000)}}, good)
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(good.read_bytes()[:20000])
    proc = run(*_train_cmd(tmp_path / 'work', shapes, '--resume', str(cut))[1:], check=False)
    assert proc.returncode == 2 and f'{cut} (20000 bytes) is truncated or corrupt' in proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _two_cpu_processes(script, *args) -> subprocess.CompletedProcess:
    """``tools/{script}`` with 2 CPU processes (gloo), as a user without GPUs runs it."""
    # PYTHONFAULTHANDLER: should a rank abort, its Python stack is in the log.
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(_free_port()), CUDA_VISIBLE_DEVICES='',
               PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1', PYTHONFAULTHANDLER='1')
    return subprocess.run(['bash', f'tools/{script}', *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)


def test_dist_train_runs_two_cpu_processes_with_gloo(shapes, tmp_path):
    work = tmp_path / 'dist'
    proc = _two_cpu_processes('dist_train.sh', CONFIG, '2', '--work-dir', str(work),
                              '--data-root', str(shapes), '--cfg-options', *SMALL,
                              'train_cfg.max_epochs=1', 'train_cfg.val_interval=1')
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert 'Distributed training: True' in log
    # 12 images, 4 per process per iteration, 2 processes: 2 iterations in the epoch.
    assert 'Epoch(train) [1][2/2]' in log and 'Epoch(train) [1][3/' not in log
    assert 'coco/bbox_mAP' in log
    assert sorted(p.name for p in work.glob('*.pth')) == ['epoch_1.pth']
    state = _weights(work / 'epoch_1.pth')
    assert not any(k.startswith('module.') for k in state)
    assert all(v.isfinite().all() for v in state.values() if v.is_floating_point())


def test_dist_test_on_two_cpu_processes_gives_the_metrics_of_one(trained_demo_detector,
                                                                  tested_demo_detector,
                                                                  tmp_path):
    trained, one = trained_demo_detector, tested_demo_detector
    proc = _two_cpu_processes('dist_test.sh', trained.config, str(trained.checkpoint), '2',
                              '--work-dir', str(tmp_path), '--out', str(tmp_path / 'two.pkl'),
                              '--data-root', str(trained.data_root), '--cfg-options', *LOADERS)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    metrics_one, predictions_one = read_test_results(one.work_dir, one.predictions)
    metrics_two, predictions_two = read_test_results(tmp_path, tmp_path / 'two.pkl')
    assert metrics_two == metrics_one and metrics_two['count/images'] == trained.num_val
    ids_one = sorted(p['img_id'] for p in predictions_one)
    ids_two = sorted(p['img_id'] for p in predictions_two)
    assert ids_two == ids_one and len(ids_two) == trained.num_val
