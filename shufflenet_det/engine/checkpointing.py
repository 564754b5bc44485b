"""Checkpoints that are never half-written and resume to the same weights (exactly, with
``num_workers=0`` or ``persistent_workers=False``): see :class:`ResumableCheckpointHook`."""
import glob
import os
import os.path as osp
import random
from typing import Optional

import numpy as np
import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_gather_object, get_dist_info, is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import HistoryBuffer

from ..checkpoint import CheckpointFileError, record_tensor_digest
from ..fileio import PARTIAL_SUFFIX, atomic_open

RNG_STATES_KEY = 'shufflenet_det_rng_states'


def read_last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint that ``WORK_DIR/last_checkpoint`` names, None without the file, or
    :class:`CheckpointFileError` for a file that does not name one (MMEngine would fail
    later, or resume from '')."""
    path = osp.join(work_dir, 'last_checkpoint')
    if not osp.lexists(path):
        return None
    with open(path, 'rb') as f:
        raw = f.read(4096)
    text = raw.decode('utf-8', errors='replace').strip()
    if '\ufffd' in text or not text.isprintable():
        problem = f'holds {raw[:60]!r}{" ..." * (len(raw) > 60)}, not the path of a checkpoint'
    elif not text:
        problem = 'is empty'
    elif '://' in text or osp.isfile(text):
        return text
    else:
        missing = 'is not a file' if osp.exists(text) else 'does not exist'
        problem = f'names {text}, which {missing}'
    raise CheckpointFileError(
        f'{path} {problem}; it should hold the path of the newest checkpoint of the run, '
        'as the checkpoint hook writes it. Name the checkpoint to resume from (--resume '
        f'CKPT), or delete {path} to start the run afresh')


def capture_rng_state() -> dict:
    """This process's Python, NumPy, torch and CUDA generator states, as data that
    ``torch.load(weights_only=True)`` reads (NumPy's key as an int64 tensor)."""
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    state = dict(python=random.getstate(),
                 numpy=(kind, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, gauss),
                 torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Inverse of :func:`capture_rng_state`."""
    version, internal, gauss_next = state['python']
    random.setstate((version, tuple(internal), gauss_next))
    kind, key, pos, has_gauss, gauss = state['numpy']
    np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


class _HistoryBufferData(HistoryBuffer):
    """Pickles as ``HistoryBuffer(log_history, count_history, max_length)``, without the
    class's table of statistics functions (which unpickles through ``builtins.getattr``)."""

    def __reduce__(self):
        return HistoryBuffer, (self._log_history, self._count_history, self.max_length)


@HOOKS.register_module()
class ResumableCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same arguments) whose checkpoints resume exactly: a checkpoint is
    written under a hidden ``.partial`` name and renamed into place, ``last_checkpoint`` is
    replaced atomically, then an outdated checkpoint deleted (a remote ``out_dir`` keeps
    MMEngine's way); every rank's generator states are saved, and validation runs on a
    saved and restored state; each checkpoint records a digest of its tensors."""

    def _is_local(self) -> bool:
        return self.backend_args is None and self.file_client_args is None \
            and '://' not in str(self.out_dir)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process() and self._is_local():
            for stale in glob.glob(osp.join(glob.escape(self.out_dir), f'.*{PARTIAL_SUFFIX}*')):
                os.remove(stale)  # left by a run killed mid-write; never a complete file
        states = runner.message_hub.get_info(RNG_STATES_KEY)
        if states is None:  # not a resumed run
            return
        rank, world_size = get_dist_info()
        if len(states) == world_size:
            restore_rng_state(states[rank])
            runner.logger.info('restored the random generator states of the checkpoint')
        else:
            runner.logger.warning(
                f'the checkpoint holds generator states for {len(states)} processes but '
                f'this run has {world_size}; continuing from fresh seeds, so the resumed '
                'run will not repeat the original one exactly')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # At this priority (VERY_LOW) the hooks that rewrite the checkpoint (EMAHook) have
        # run, so the digest covers the tensors as they are written.
        record_tensor_digest(checkpoint)
        for buffer in checkpoint.get('message_hub', {}).get('log_scalars', {}).values():
            if type(buffer) is HistoryBuffer:  # a copy: the message hub keeps its own
                buffer.__class__ = _HistoryBufferData

    def before_val(self, runner) -> None:
        self._state_before_val = capture_rng_state()

    def after_val(self, runner) -> None:  # validation must not shift what training draws
        restore_rng_state(self._state_before_val)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        runner.message_hub.update_info(RNG_STATES_KEY, all_gather_object(capture_rng_state()))
        if not self._is_local():
            return super()._save_checkpoint_with_step(runner, step, meta)
        outdated = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                            and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = osp.join(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        partial = f'.{filename}{PARTIAL_SUFFIX}'
        runner.save_checkpoint(self.out_dir, partial, save_optimizer=self.save_optimizer,
                               save_param_scheduler=self.save_param_scheduler, meta=meta,
                               by_epoch=self.by_epoch, **self.args)
        if not is_main_process():
            return
        os.replace(osp.join(self.out_dir, partial), self.last_ckpt)
        with atomic_open(osp.join(runner.work_dir, 'last_checkpoint')) as f:
            f.write(self.last_ckpt)
        if outdated is not None:
            old = osp.join(self.out_dir, self.filename_tmpl.format(outdated))
            if osp.isfile(old):
                os.remove(old)
