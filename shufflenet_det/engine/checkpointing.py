"""Checkpoints that are never half-written and resume to the same weights.

MMEngine's ``CheckpointHook`` leaves these gaps:

1. It writes ``epoch_N.pth`` in place, so a kill during the write leaves a
   truncated file under the final name.
2. With ``max_keep_ckpts`` it deletes the oldest checkpoint *before* writing the
   new one: a kill in between leaves ``last_checkpoint`` naming a deleted file.
3. Checkpoints hold no random-number state, and validation draws from the same
   generators as training, so a resumed run samples different RoIs and
   augmentations than the uninterrupted run from the same seed.
4. Nothing in a checkpoint tells a damaged tensor from a trained one.
5. mmengine 0.10.7 pickles each logged scalar's ``HistoryBuffer`` with the class's table
   of statistics functions, which unpickles through ``builtins.getattr``: a global that
   torch's safe loader refuses.

:class:`ResumableCheckpointHook` closes them: the checkpoint is written under a
hidden ``.partial`` name and renamed into place, ``last_checkpoint`` is replaced
atomically, outdated checkpoints are deleted only afterwards, every rank's
Python, NumPy, torch (and CUDA) generator states travel in the checkpoint's
message hub, validation runs on a saved-and-restored generator state, and
every checkpoint records a digest of its tensors in ``meta['tensor_digest']``
(:mod:`shufflenet_det.checkpoint.digest`), which the loaders check, and the logged
scalars are written as their data alone (:class:`HistoryBufferData`), which loads
as MMEngine's own ``HistoryBuffer`` without the table.

Bit-exact resumption also needs the data order and augmentation to be
reproducible from that state: ``num_workers=0`` or ``persistent_workers=False``
(persistent workers keep their own generators across epochs, which a new
process cannot rebuild).
"""
import glob
import os
import os.path as osp
import random
from typing import Optional

import numpy as np
import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_gather_object, get_dist_info, is_distributed, is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import HistoryBuffer

from ..checkpoint.digest import record_tensor_digest
from ..checkpoint.files import CheckpointFileError
from ..fileio import PARTIAL_SUFFIX, atomic_open

RNG_STATES_KEY = 'shufflenet_det_rng_states'
LAST_CHECKPOINT = 'last_checkpoint'
_SHOWN_BYTES = 60


def read_last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint that ``WORK_DIR/last_checkpoint`` names; None if there is no such file.

    MMEngine's ``find_latest_checkpoint`` returns whatever the file holds, and the
    Runner then fails on it somewhere inside its setup (or, for an empty file,
    resumes from ``''``).

    Raises:
        CheckpointFileError: the file is empty, not a path (binary or several lines),
            or names a local file that does not exist; the message names the file and
            shows what it holds.
    """
    path = osp.join(work_dir, LAST_CHECKPOINT)
    if not osp.lexists(path):
        return None
    try:
        with open(path, 'rb') as f:
            raw = f.read(4096)
    except OSError as exc:  # e.g. a directory of that name
        raise CheckpointFileError(f'{path} cannot be read ({exc.strerror}); it should be a '
                                  'text file naming the newest checkpoint of the run') from exc
    try:
        text = raw.decode('utf-8').strip()
    except UnicodeDecodeError:
        text = None
    shown = repr(raw[:_SHOWN_BYTES]) + (' ...' if len(raw) > _SHOWN_BYTES else '')
    if text is None or not text.isprintable():
        problem = f'holds {shown}, not the path of a checkpoint'
    elif not text:
        problem = 'is empty'
    elif '://' not in text and not osp.isfile(text):
        problem = f'names {text}, which ' + ('is not a file' if osp.exists(text) else
                                             'does not exist')
    else:
        return text
    raise CheckpointFileError(
        f'{path} {problem}; it should hold the path of the newest checkpoint of the run, '
        'as the checkpoint hook writes it. Name the checkpoint to resume from (--resume '
        f'CKPT), or delete {path} to start the run afresh')


def capture_rng_state() -> dict:
    """This process's Python, NumPy, torch and CUDA generator states, as plain data.

    NumPy's key becomes an int64 tensor so that the state loads with
    ``torch.load(weights_only=True)``.
    """
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


class HistoryBufferData(HistoryBuffer):
    """A ``HistoryBuffer`` that pickles as MMEngine's own, rebuilt from its data alone.

    Unpickling calls ``HistoryBuffer(log_history, count_history, max_length)``: no
    reference to a function, and no class of MMEngine changed to get there.
    """

    @classmethod
    def of(cls, buffer: HistoryBuffer) -> 'HistoryBufferData':
        log_history, count_history = buffer.data
        return cls(log_history, count_history, buffer.max_length)

    def __reduce__(self):
        return HistoryBuffer, (self._log_history, self._count_history, self.max_length)


def drop_statistics_tables(checkpoint: dict) -> None:
    """Replace each ``HistoryBuffer`` of the message hub in ``checkpoint`` by its data."""
    scalars = checkpoint.get('message_hub', {}).get('log_scalars', {})
    for key, buffer in scalars.items():
        if type(buffer) is HistoryBuffer:
            scalars[key] = HistoryBufferData.of(buffer)


@HOOKS.register_module()
class ResumableCheckpointHook(CheckpointHook):
    """``CheckpointHook`` with atomic files and generator states for exact resumption.

    Takes every argument of MMEngine's ``CheckpointHook``. Local ``out_dir``\\ s
    get the atomic write and delete-after-write order; remote ones (a
    ``backend_args`` backend or a URL) keep MMEngine's behaviour for the files,
    and the generator states are saved either way.
    """

    def _is_local(self) -> bool:
        return self.backend_args is None and self.file_client_args is None \
            and '://' not in str(self.out_dir)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process() and self._is_local():
            for stale in glob.glob(osp.join(glob.escape(self.out_dir), f'.*{PARTIAL_SUFFIX}*')):
                os.remove(stale)  # left by a run killed mid-write; never a complete file
        states = runner.message_hub.get_info(RNG_STATES_KEY)
        if states is not None:  # only a resumed run's message hub holds them
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
        # At this hook's priority (VERY_LOW) the hooks that rewrite the checkpoint (e.g.
        # EMAHook, NORMAL, which swaps in the averaged weights) have already run, so the
        # digest covers the tensors as they are written.
        record_tensor_digest(checkpoint)
        drop_statistics_tables(checkpoint)

    def before_val(self, runner) -> None:
        self._state_before_val = capture_rng_state()

    def after_val(self, runner) -> None:
        state = getattr(self, '_state_before_val', None)
        if state is not None:  # validation must not shift what training draws next
            restore_rng_state(state)
            self._state_before_val = None

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        local_state = capture_rng_state()
        states = all_gather_object(local_state) if is_distributed() else [local_state]
        runner.message_hub.update_info(RNG_STATES_KEY, states)
        if not self._is_local():
            super()._save_checkpoint_with_step(runner, step, meta)
            return

        outdated: Optional[int] = None
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
