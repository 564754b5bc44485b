"""One training run per work dir: the lock file, and two real trainings into one work dir."""
import importlib
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from shufflenet_det.checkpoint import load_checkpoint_file
from shufflenet_det.datasets.synthetic_shapes import generate_shapes_dataset
from shufflenet_det.engine.work_dir_lock import LOCK_NAME, WorkDirLockedError, lock_work_dir

from ..helpers import REPO, load_tool

HOST = socket.gethostname()
DEMO_CONFIG = str(REPO / 'configs/faster_rcnn_shufflenet_demo.py')


def _write_lock(work_dir, **holder):
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / LOCK_NAME).write_text(json.dumps(holder))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def test_the_lock_names_its_holder_and_is_released(tmp_path):
    with lock_work_dir(str(tmp_path)) as mine:
        held = json.loads((tmp_path / LOCK_NAME).read_text())
        assert held == mine and held['pid'] == os.getpid() and held['host'] == HOST
        with pytest.raises(WorkDirLockedError) as info, lock_work_dir(str(tmp_path)):
            pass
        assert str(info.value).startswith(f'{tmp_path} is in use by another training run: '
                                          f'pid {os.getpid()} on host {HOST} since 20')
        assert 'choose another --work-dir' in str(info.value)
    assert sorted(tmp_path.iterdir()) == []


def test_the_lock_is_released_when_the_run_raises(tmp_path):
    with pytest.raises(KeyError), lock_work_dir(str(tmp_path)):
        raise KeyError('a crash inside training')
    assert not (tmp_path / LOCK_NAME).exists()
    with lock_work_dir(str(tmp_path)):  # free again
        pass


def test_a_lock_whose_process_is_gone_is_taken_over_with_a_log_line(tmp_path):
    pid = _dead_pid()
    _write_lock(tmp_path, pid=pid, host=HOST, since=0.0, started=None, token='old')
    logged = []
    with lock_work_dir(str(tmp_path), log=logged.append) as mine:
        assert json.loads((tmp_path / LOCK_NAME).read_text())['token'] == mine['token']
        assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_NAME]
    assert logged == [f'taking over the lock {tmp_path / LOCK_NAME}: its pid {pid} on host '
                      f'{HOST} since 1970-01-01 00:00:00 UTC is no longer running']


def test_a_reused_pid_does_not_keep_a_stale_lock(tmp_path):
    # This process is alive, but it is not the one that took the lock: its start differs.
    _write_lock(tmp_path, pid=os.getpid(), host=HOST, since=0.0, started='1', token='old')
    logged = []
    with lock_work_dir(str(tmp_path), log=logged.append):
        pass
    assert len(logged) == 1 and 'is no longer running' in logged[0]


def test_a_lock_taken_on_another_host_is_respected(tmp_path):
    _write_lock(tmp_path, pid=_dead_pid(), host='gpu-node-7', since=0.0, started=None, token='x')
    with pytest.raises(WorkDirLockedError, match=r'on host gpu-node-7 since 1970-01-01 00:00:00 '
                                                 r'UTC \(another host: its process cannot be '
                                                 r'checked from here\)'):
        with lock_work_dir(str(tmp_path)):
            pass
    assert json.loads((tmp_path / LOCK_NAME).read_text())['token'] == 'x'


def test_an_unreadable_lock_is_taken_over_with_a_log_line(tmp_path):
    # A lock is linked into place whole, so an unreadable one was not written by a run.
    (tmp_path / LOCK_NAME).write_bytes(b'')
    logged = []
    with lock_work_dir(str(tmp_path), log=logged.append):
        pass
    assert logged == [f'taking over the lock {tmp_path / LOCK_NAME}: it is unreadable']


def test_release_leaves_a_lock_taken_over_by_another_run_alone(tmp_path):
    with lock_work_dir(str(tmp_path)) as mine:
        _write_lock(tmp_path, **dict(mine, token='theirs'))
    assert json.loads((tmp_path / LOCK_NAME).read_text())['token'] == 'theirs'


@pytest.mark.parametrize('rank,locked', [('0', True), ('1', False)])
def test_only_the_process_of_rank_0_of_a_distributed_run_takes_the_lock(
        tmp_path, monkeypatch, rank, locked):
    monkeypatch.setenv('RANK', rank)
    with lock_work_dir(str(tmp_path), 'pytorch'):
        assert (tmp_path / LOCK_NAME).exists() == locked


# The first run waits before its first epoch until the test has tried the second, so that
# the overlap is certain, not a matter of timing.
GATE_HOOK = '''
import os, time
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class WaitForGateHook(Hook):
    def __init__(self, gate):
        self.gate = gate

    def before_train(self, runner):
        deadline = time.monotonic() + 1800  # a safety net against a test that never opens it
        while not os.path.exists(self.gate) and time.monotonic() < deadline:
            time.sleep(0.1)
'''
TINY = ['train_dataloader.batch_size=4', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1',
        *(f'{split}_dataloader.{key}' for split in ('train', 'val', 'test')
          for key in ('num_workers=0', 'persistent_workers=False'))]


@pytest.mark.slow
def test_a_second_training_into_the_same_work_dir_stops_and_the_first_completes(
        tmp_path, capsys):
    data, work, gate = tmp_path / 'shapes', tmp_path / 'work', tmp_path / 'gate'
    generate_shapes_dataset(str(data), num_train=4, num_val=2, image_size=128)
    (tmp_path / 'lock_gate.py').write_text(GATE_HOOK)
    gated = tmp_path / 'gated_demo.py'
    gated.write_text(f"_base_ = ['{DEMO_CONFIG}']\n"
                     "custom_imports = dict(imports=['shufflenet_det', 'lock_gate'], "
                     "allow_failed_imports=False)\n"
                     "custom_hooks = [dict(type='NonFiniteLossHook'), "
                     f"dict(type='WaitForGateHook', gate='{gate}')]\n")
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get('PYTHONPATH', '')]))
    log_file = open(tmp_path / 'first.log', 'w')
    first = subprocess.Popen(
        [sys.executable, 'tools/train.py', str(gated), '--work-dir', str(work), '--data-root',
         str(data), '--cfg-options', *TINY], cwd=REPO, env=env, stdout=log_file,
        stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 1800  # a safety net, not a performance limit
        while not (work / LOCK_NAME).exists() and first.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        assert first.poll() is None, (tmp_path / 'first.log').read_text()[-3000:]
        code = load_tool('train').main([DEMO_CONFIG, '--work-dir', str(work), '--data-root',
                                        str(data), '--cfg-options', *TINY])
        gate.touch()
        first.wait(timeout=1800)
    finally:
        gate.touch()
        first.kill()
        log_file.close()
    log = (tmp_path / 'first.log').read_text()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith(
        f'error: {work} is in use by another training run: pid {first.pid} on host {HOST} '
        'since ')
    assert first.returncode == 0, log[-3000:]
    assert 'coco/bbox_mAP' in log
    assert not (work / LOCK_NAME).exists()
    meta = load_checkpoint_file(work / 'epoch_1.pth')['meta']
    assert meta['tensor_digest']['algorithm'] == 'crc32'


def test_the_demo_stops_on_a_held_work_dir_before_generating_data(tmp_path, monkeypatch):
    # The module, not the function that shufflenet_det.apis exports under the same name.
    demo = importlib.import_module('shufflenet_det.apis.demo')

    def generate(*args, **kwargs):
        raise AssertionError('the demo generated its data before taking the lock')

    monkeypatch.setattr(demo, 'ensure_demo_data', generate)
    with lock_work_dir(str(tmp_path)):
        with pytest.raises(WorkDirLockedError) as info:
            demo.run_demo(DEMO_CONFIG, str(tmp_path))
    assert str(info.value).startswith(f'{tmp_path} is in use by another training run: '
                                      f'pid {os.getpid()} on host {HOST}')
