"""``tools/train.py``: train a detector or the ImageNet classifier with MMEngine's Runner."""
import logging
from collections.abc import Mapping
from contextlib import ExitStack
from typing import Optional

from mmengine.config import Config
from mmengine.device import get_device
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..checkpoint import (CheckpointFileError, check_checkpoint_fits_model,
                          check_pretrained_files, configure_training_from_scratch,
                          load_checkpoint_file, state_shapes)
from ..datasets import check_dataset_paths
from ..engine import setup_cpu_distributed
from ..engine.checkpointing import read_last_checkpoint
from ..engine.work_dir_lock import lock_work_dir
from ..errors import ConfigError
from .runner_config import prepare_config


def read_resume_checkpoint(cfg: Config) -> Optional[dict]:
    """The checkpoint a ``resume=True`` run reads, read once here and fixed as
    ``cfg.load_from`` (``WORK_DIR/last_checkpoint`` unless one is named), so that a
    damaged, unsafe or weights-only file stops the run before the Runner loads it.
    None if the run does not resume, resumes from a URL, or auto-resumes a fresh work dir.
    """
    if not cfg.get('resume'):
        return None
    if not cfg.get('load_from'):
        cfg.load_from = read_last_checkpoint(cfg.work_dir)
    path = cfg.load_from
    if not path or '://' in str(path):
        return None
    ckpt = load_checkpoint_file(path)
    state, meta = ckpt.get('state_dict'), ckpt.get('meta')
    if not isinstance(state, Mapping) or not isinstance(meta, Mapping) \
            or not {'epoch', 'iter'} <= set(meta):
        raise CheckpointFileError(
            f'{path} is not a training checkpoint: it lacks the state_dict and the meta epoch '
            'and iter that resuming needs (converted, exported and pretrained files hold '
            'weights only). To start a new run from its weights, set load_from instead')
    return dict(shapes=state_shapes(state), source=str(path), meta=dict(meta))


def build_train_runner(config: str, work_dir: Optional[str] = None, amp: bool = False,
                       auto_scale_lr: bool = False, resume: Optional[str] = None,
                       data_root: Optional[str] = None, cfg_options: Optional[dict] = None,
                       launcher: str = 'none', from_scratch: bool = False,
                       hold_lock: Optional[ExitStack] = None) -> Runner:
    """The Runner of a training run, with every input checked before anything is built.

    Args:
        config (str): Config file.
        work_dir (str, optional): Where logs and checkpoints go.
        amp (bool): Mixed precision (``AmpOptimWrapper``, dynamic loss scale; GPU only).
        auto_scale_lr (bool): Scale the lr linearly from ``auto_scale_lr.base_batch_size``.
        resume (str, optional): 'auto' (the work dir's latest checkpoint) or a path.
        data_root (str, optional): Dataset root replacing the config's.
        cfg_options (dict, optional): Config overrides.
        launcher (str): 'none', 'pytorch', 'slurm' or 'mpi'.
        from_scratch (bool): Train without the ImageNet checkpoints the config names,
            every BN layer and stage training; otherwise a missing one stops the run.
        hold_lock (ExitStack, optional): Take the work dir's lock (one run per work dir)
            as soon as the work dir is known, held until the stack closes.

    Raises:
        InputError: a missing or unreadable config, dataset path, pretrained or resume
            checkpoint, or a setting that cannot work.
    """
    cfg = prepare_config(config, work_dir, cfg_options, data_root, launcher)
    if hold_lock is not None:
        hold_lock.enter_context(lock_work_dir(cfg.work_dir, launcher))
    if amp:
        if get_device() in ('cpu', 'mps'):
            raise ConfigError("--amp needs a GPU: MMEngine's AmpOptimWrapper trains on CUDA (or "
                              'NPU, MLU, MUSA) devices only, and torch sees none here')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise ConfigError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if resume is not None:
        cfg.resume, cfg.load_from = True, None if resume == 'auto' else resume
    check_dataset_paths(cfg)
    scratch = configure_training_from_scratch(cfg.model) if from_scratch else None
    if scratch is None:
        check_pretrained_files(cfg.get('model'))
    resumed = read_resume_checkpoint(cfg)
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if resumed is not None:
        check_checkpoint_fits_model(getattr(runner.model, 'module', runner.model),
                                    config=config, **resumed)
    if scratch is not None:
        print_log('training from scratch (--from-scratch): ' + '; '.join(scratch),
                  logger='current')
    _warn_unscaled_lr(runner)
    return runner


def _warn_unscaled_lr(runner: Runner) -> None:
    """One warning when the lr is set for another total batch and --auto-scale-lr is off."""
    cfg = runner.cfg
    scale = cfg.get('auto_scale_lr') or {}
    lr = ((cfg.get('optim_wrapper') or {}).get('optimizer') or {}).get('lr')
    base, per_process = scale.get('base_batch_size'), cfg.train_dataloader.get('batch_size')
    if scale.get('enable') or not base or lr is None or not per_process:
        return
    total = runner.world_size * per_process
    if total != base:
        print_log(f'lr {lr} is set for a total batch of {base} images (auto_scale_lr.'
                  f'base_batch_size); this run\'s is {total} ({runner.world_size} process(es) x '
                  f'{per_process}). Linear scaling would give lr {lr * total / base:.6g}: pass '
                  '--auto-scale-lr to use it.', logger='current', level=logging.WARNING)


def train(config: str, **kwargs) -> None:
    """Train as :func:`build_train_runner` prepares it, the work dir locked until the end."""
    with ExitStack() as hold_lock:
        build_train_runner(config, hold_lock=hold_lock, **kwargs).train()
