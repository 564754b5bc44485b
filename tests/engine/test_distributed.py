"""Leaving the process group: every tool destroys it before its process exits."""
import os

import pytest
import torch
import torch.distributed as torch_dist
from mmengine.model import MMDistributedDataParallel

from shufflenet_det.apis import run_tool, train
from shufflenet_det.engine import leave_process_group


@pytest.fixture
def one_process_group():
    """A gloo group of one process, in memory; destroyed at the end whatever the test did."""
    torch_dist.init_process_group('gloo', store=torch_dist.HashStore(), rank=0, world_size=1)
    yield
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def test_leave_process_group_destroys_the_group_and_is_a_no_op_without_one(one_process_group):
    assert torch_dist.is_initialized()
    leave_process_group()
    assert not torch_dist.is_initialized()
    leave_process_group()  # nothing to leave: no error
    assert not torch_dist.is_initialized()


TASKS = '/proc/self/task'  # Linux: one folder per thread of this process, with its name


def _gloo_worker_threads() -> int:
    """This process's threads that torch names as gloo's workers."""
    return sum(open(f'{TASKS}/{t}/comm').read().strip() == 'pt_gloo_runloop'
               for t in os.listdir(TASKS))


def test_leaving_stops_gloo_workers_a_ddp_wrapper_in_a_reference_cycle_held(one_process_group):
    # What a training leaves behind: the wrapper inside the Runner's reference cycles, and a
    # collective's tensors released by a worker thread. A worker still running at the
    # interpreter's exit can abort the process after the training succeeded.
    class Owner:
        pass

    owner = Owner()
    owner.itself = owner
    owner.model = MMDistributedDataParallel(torch.nn.Linear(4, 2), device_ids=None)
    owner.model(torch.randn(3, 4)).sum().backward()
    gathered = [None]
    torch_dist.all_gather_object(gathered, {'rank': 0})
    assert gathered == [{'rank': 0}]
    # Asked only now: a worker names itself once it runs, so after a collective it has.
    if not os.path.isdir(TASKS) or not _gloo_worker_threads():
        pytest.skip('this torch does not name its gloo worker threads')
    del owner
    leave_process_group()
    assert not torch_dist.is_initialized()
    assert _gloo_worker_threads() == 0


def test_a_tool_leaves_the_process_group_when_it_stops_early(one_process_group, tmp_path,
                                                              capsys):
    status = run_tool(train, str(tmp_path / 'no_such_config.py'), work_dir=str(tmp_path / 'work'))
    assert status == 2 and 'no_such_config.py' in capsys.readouterr().err
    assert not torch_dist.is_initialized()


def test_a_tool_leaves_the_process_group_when_it_fails(one_process_group):
    def broken():
        raise RuntimeError('a bug')

    with pytest.raises(RuntimeError, match='a bug'):
        run_tool(broken)
    assert not torch_dist.is_initialized()
