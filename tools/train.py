"""Train a detector (or the ImageNet classifier) with MMEngine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                          [--auto-scale-lr] [--data-root DIR] [--cfg-options K=V ...]
                          [--launcher {none,pytorch,slurm,mpi}]

Several GPUs or nodes: tools/dist_train.sh CONFIG GPUS (torchrun, PyTorch DDP). Without
CUDA, the same command runs that many CPU processes with the gloo backend.
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner, find_latest_checkpoint

import shufflenet_det  # noqa: F401  (registers modules; safe checkpoint loading for --resume)
from shufflenet_det.apis import prepare_config
from shufflenet_det.checkpoint import load_checkpoint_file
from shufflenet_det.datasets import DatasetLayoutError, check_dataset_paths
from shufflenet_det.engine import setup_cpu_distributed


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr linearly with the total batch size '
                        '(the config\'s auto_scale_lr.base_batch_size is the reference)')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or from the latest checkpoint in the work '
                        'dir if no CKPT is given')
    parser.add_argument('--data-root', help='dataset root replacing the config\'s data_root')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. train_cfg.max_epochs=6')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def _resume_source(cfg) -> str | None:
    """The checkpoint a resumed run will read (``None``: nothing to resume from)."""
    if cfg.load_from:
        return cfg.load_from
    return find_latest_checkpoint(cfg.work_dir) if osp.isdir(cfg.work_dir) else None


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        cfg = prepare_config(args.config, args.work_dir, args.cfg_options, args.data_root,
                             args.launcher)
    except ValueError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            print('error: --auto-scale-lr needs auto_scale_lr.base_batch_size in the config',
                  file=sys.stderr)
            return 2
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    try:
        check_dataset_paths(cfg)
        if cfg.get('resume') and (source := _resume_source(cfg)) and '://' not in source:
            # Read once up front: a truncated or unsafe file fails here with its name,
            # not in the middle of the Runner's setup.
            load_checkpoint_file(source)
        setup_cpu_distributed(cfg)
    except (DatasetLayoutError, OSError, ValueError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()
    return 0


if __name__ == '__main__':
    sys.exit(main())
