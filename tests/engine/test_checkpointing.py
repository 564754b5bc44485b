"""ResumableCheckpointHook and NonFiniteLossHook inside a real MMEngine Runner (toy model)."""
import random
import uuid

import numpy as np
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

from shufflenet_det.checkpoint import mmengine_loads_safely, safe_torch_load
from shufflenet_det.checkpoint.files import SAFE_TYPES, restricted_pickle_module
from shufflenet_det.engine import capture_rng_state, restore_rng_state


class ToyModel(BaseModel):
    """y = w * x; the loss turns NaN at the iteration whose input is 3 (``nan_at``)."""

    def __init__(self, nan_at=None):
        super().__init__()
        self.w = nn.Parameter(torch.ones(4))
        self.nan_at = nan_at

    def forward(self, x, mode='loss'):  # one sample per batch: x has shape (4,)
        loss = (self.w * x).pow(2).mean() * 1e-3
        if self.nan_at is not None and int(x[0]) == self.nan_at:
            loss = loss * float('nan')
        return dict(loss=loss)


def _runner(work_dir, nan_at=None, max_iters=6, resume=False):
    data = [torch.full((4, ), float(i)) for i in range(1, 7)]
    return Runner(
        model=ToyModel(nan_at), work_dir=str(work_dir),
        train_dataloader=dict(dataset=data, sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='pseudo_collate'), batch_size=1,
                              num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='ResumableCheckpointHook', by_epoch=False,
                                           interval=1, max_keep_ckpts=1)),
        custom_hooks=[dict(type='NonFiniteLossHook')],
        default_scope='mmdet', resume=resume, randomness=dict(seed=0),
        experiment_name=f'toy-{uuid.uuid4().hex}')  # Runner seeds `random`


def test_a_nan_loss_stops_training_before_a_nan_checkpoint_is_written(tmp_path):
    runner = _runner(tmp_path, nan_at=3)
    with pytest.raises(RuntimeError, match=r'loss became nan at epoch 1, iteration 3 .*'
                                           r'Lower the learning rate'):
        runner.train()
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['iter_2.pth']
    assert (tmp_path / 'last_checkpoint').read_text().endswith('iter_2.pth')
    state = safe_torch_load(tmp_path / 'iter_2.pth')['state_dict']
    assert torch.isfinite(state['w']).all()


def test_a_save_interrupted_mid_write_leaves_the_previous_checkpoint_usable(tmp_path, monkeypatch):
    runner = _runner(tmp_path, max_iters=6)
    save = runner.save_checkpoint

    def save_then_die(out_dir, filename, **kwargs):
        save(out_dir, filename, **kwargs)
        if 'iter_4' in filename:  # the file is on disk under its temporary name; then a kill
            raise KeyboardInterrupt

    monkeypatch.setattr(runner, 'save_checkpoint', save_then_die)
    with pytest.raises(KeyboardInterrupt):
        runner.train()
    # max_keep_ckpts=1, yet iter_3 survives: outdated files go only after the new one is in place.
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['iter_3.pth']
    assert (tmp_path / 'last_checkpoint').read_text().endswith('iter_3.pth')
    assert (tmp_path / '.iter_4.pth.partial').exists()

    resumed = _runner(tmp_path, max_iters=6, resume=True)
    with mmengine_loads_safely():  # as the tools resume (apis.run_tool)
        resumed.train()
    assert not list(tmp_path.glob('.*partial*'))
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['iter_6.pth']


def test_logged_scalars_are_written_without_the_statistics_table(tmp_path):
    from mmengine.logging import HistoryBuffer
    _runner(tmp_path, max_iters=2).train()
    # Only the types, no builtins.getattr: MMEngine's HistoryBuffer pickles the class's table
    # of statistics methods through it, this project's checkpoints leave it out.
    ckpt = torch.load(tmp_path / 'iter_2.pth', map_location='cpu', weights_only=False,
                      pickle_module=restricted_pickle_module(SAFE_TYPES))
    scalars = ckpt['message_hub']['log_scalars']
    assert scalars and all(type(b) is HistoryBuffer for b in scalars.values())
    loss = scalars['train/loss']
    assert len(loss.data[0]) == 2 and loss.mean() == loss.data[0].mean()
    assert 'statistics_methods' not in vars(loss)


def test_generator_states_round_trip_through_safe_loading(tmp_path):
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    state = capture_rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.save(state, tmp_path / 'rng.pth')
    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    restore_rng_state(safe_torch_load(tmp_path / 'rng.pth'))
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1]) and random.random() == expected[2]


def test_cpu_distributed_setup_is_skipped_without_a_launcher_and_refuses_slurm(monkeypatch):
    from mmengine.config import Config

    from shufflenet_det.engine import setup_cpu_distributed
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert setup_cpu_distributed(Config(dict(launcher='none'))) is False
    with pytest.raises(ValueError, match=r"launcher 'slurm' needs CUDA in mmengine 0\.10\.7; .*"
                                         r"torchrun \(tools/dist_train\.sh\)"):
        setup_cpu_distributed(Config(dict(launcher='slurm')))
    # With the group started, MMEngine's DDP wrapper is told to take no device ids.
    monkeypatch.setattr(torch.distributed, 'is_initialized', lambda: True)
    cfg = Config(dict(launcher='pytorch'))
    assert setup_cpu_distributed(cfg) is True
    assert cfg.model_wrapper_cfg == dict(type='MMDistributedDataParallel', device_ids=None,
                                         broadcast_buffers=False, find_unused_parameters=False)


def test_runner_checkpoints_record_a_digest_of_all_their_tensors(tmp_path):
    from shufflenet_det.checkpoint import load_checkpoint_file
    from shufflenet_det.checkpoint.digest import compute_tensor_digest, named_tensors
    _runner(tmp_path, max_iters=2).train()
    ckpt = load_checkpoint_file(tmp_path / 'iter_2.pth')  # verifies the digest
    names = [name for name, _ in named_tensors(ckpt)]
    assert 'state_dict/w' in names
    assert any(name.startswith('message_hub/') for name in names)  # the generator states
    recorded = ckpt['meta']['tensor_digest']
    assert recorded == compute_tensor_digest(ckpt) and recorded['algorithm'] == 'crc32'
    ckpt['state_dict']['w'][0] += 1e-3
    assert compute_tensor_digest(ckpt) != recorded


@pytest.mark.parametrize('content,says', [
    (None, None),
    (b'', r'is empty'),
    (b'\x00\x9f\x92\x96junk', r"holds b'\\x00\\x9f\\x92\\x96junk', not the path of a checkpoint"),
    (b'/nowhere/iter_3.pth\n', r'names /nowhere/iter_3\.pth, which does not exist'),
    (b'two\nlines', r"holds b'two\\nlines'"),
], ids=['absent', 'empty', 'binary', 'missing-target', 'two-lines'])
def test_last_checkpoint_holding_garbage_is_an_error_naming_it(tmp_path, content, says):
    from shufflenet_det.checkpoint import CheckpointFileError
    from shufflenet_det.engine.checkpointing import read_last_checkpoint
    if content is None:
        assert read_last_checkpoint(str(tmp_path)) is None
        return
    (tmp_path / 'last_checkpoint').write_bytes(content)
    with pytest.raises(CheckpointFileError, match=f'^{tmp_path}/last_checkpoint {says}'):
        read_last_checkpoint(str(tmp_path))


def test_last_checkpoint_naming_an_existing_file_is_returned(tmp_path):
    from shufflenet_det.engine.checkpointing import read_last_checkpoint
    (tmp_path / 'iter_1.pth').touch()
    (tmp_path / 'last_checkpoint').write_text(f'{tmp_path}/iter_1.pth\n')
    assert read_last_checkpoint(str(tmp_path)) == f'{tmp_path}/iter_1.pth'
