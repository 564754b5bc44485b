"""``tools/train.py``: train a detector or the ImageNet classifier with MMEngine's Runner."""
import logging
from contextlib import ExitStack
from typing import Optional

from mmengine.device import get_device
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..checkpoint.pretrained_files import (check_pretrained_files,
                                           configure_training_from_scratch)
from ..datasets import check_dataset_paths
from ..engine import setup_cpu_distributed
from ..engine.work_dir_lock import lock_work_dir
from ..errors import ConfigError
from .resume import check_resume_fits, read_resume_checkpoint
from .runner_config import prepare_config


def build_train_runner(config: str, work_dir: Optional[str] = None, amp: bool = False,
                       auto_scale_lr: bool = False, resume: Optional[str] = None,
                       data_root: Optional[str] = None, cfg_options: Optional[dict] = None,
                       launcher: str = 'none', from_scratch: bool = False,
                       hold_lock: Optional[ExitStack] = None) -> Runner:
    """The Runner of a training run, with every input checked before anything is built.

    Args:
        config (str): Config file.
        work_dir (str, optional): Where logs and checkpoints go.
        amp (bool): Automatic mixed precision (``AmpOptimWrapper``, dynamic loss scale).
        auto_scale_lr (bool): Scale the lr linearly with the total batch size, from the
            config's ``auto_scale_lr.base_batch_size``.
        resume (str, optional): ``'auto'`` resumes from the work dir's latest
            checkpoint, a path from that file.
        data_root (str, optional): Dataset root replacing the config's.
        cfg_options (dict, optional): Config overrides.
        launcher (str): 'none', 'pytorch', 'slurm' or 'mpi'.
        from_scratch (bool): Train without the ImageNet checkpoints the config
            names, with every BN layer and stage training
            (``configure_training_from_scratch``).
            Otherwise a missing checkpoint stops the run before anything is built.
        hold_lock (ExitStack, optional): Take the work dir's lock (``.train.lock``,
            one run per work dir) as soon as the work dir is known, and hold it
            until this stack closes. :func:`train` passes one.

    Raises:
        InputError: a missing or unreadable config, dataset path, pretrained or
            resume checkpoint, or a setting that cannot work.
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
    if scratch is None:  # before the Runner builds anything: the file is needed at the start
        check_pretrained_files(cfg.get('model'))
    # Read once up front: a damaged, unsafe or mismatched file fails with its name
    # before the Runner loads anything.
    resumed = read_resume_checkpoint(cfg)
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if resumed is not None:
        check_resume_fits(runner, resumed, config)
    if scratch is not None:
        print_log('training from scratch (--from-scratch): ' + '; '.join(scratch),
                  logger='current')
    log_lr_scaling(runner)
    return runner


def log_lr_scaling(runner: Runner) -> None:
    """One warning when the lr is set for another total batch and ``--auto-scale-lr`` is off.

    It gives the lr in use and the one linear scaling to this run's total batch
    (images per process x processes) would give.
    """
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
    """Train as :func:`build_train_runner` (which takes the arguments) prepares it, with
    the work dir locked until training ends."""
    with ExitStack() as hold_lock:
        build_train_runner(config, hold_lock=hold_lock, **kwargs).train()
