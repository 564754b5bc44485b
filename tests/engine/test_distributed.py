"""Leaving the process group: every tool destroys it before its process exits."""
import pytest
import torch.distributed as torch_dist

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
