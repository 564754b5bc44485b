"""``tools/train.py``: train a detector or the ImageNet classifier with MMEngine's Runner."""
import os.path as osp
from typing import Optional

from mmengine.device import get_device
from mmengine.registry import RUNNERS
from mmengine.runner import Runner, find_latest_checkpoint

from ..checkpoint import load_checkpoint_file
from ..datasets import check_dataset_paths
from ..engine import setup_cpu_distributed
from ..errors import ConfigError
from .runner_config import prepare_config


def _resume_source(cfg) -> Optional[str]:
    """The checkpoint a resumed run will read (``None``: nothing to resume from)."""
    if cfg.load_from:
        return cfg.load_from
    return find_latest_checkpoint(cfg.work_dir) if osp.isdir(cfg.work_dir) else None


def build_train_runner(config: str, work_dir: Optional[str] = None, amp: bool = False,
                       auto_scale_lr: bool = False, resume: Optional[str] = None,
                       data_root: Optional[str] = None, cfg_options: Optional[dict] = None,
                       launcher: str = 'none') -> Runner:
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

    Raises:
        InputError: a missing or unreadable config, dataset path or resume
            checkpoint, or a setting that cannot work.
    """
    cfg = prepare_config(config, work_dir, cfg_options, data_root, launcher)
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
    if cfg.get('resume') and (source := _resume_source(cfg)) and '://' not in source:
        # Read once up front: a truncated or unsafe file fails here with its name,
        # not in the middle of the Runner's setup.
        load_checkpoint_file(source)
    setup_cpu_distributed(cfg)
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)


def train(config: str, **kwargs) -> None:
    """Train as :func:`build_train_runner` (which takes the arguments) prepares it."""
    build_train_runner(config, **kwargs).train()
