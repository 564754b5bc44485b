"""Train a detector (or the ImageNet classifier) with MMEngine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                          [--auto-scale-lr] [--data-root DIR] [--cfg-options K=V ...]
                          [--launcher {none,pytorch,slurm,mpi}]

Several GPUs or nodes: tools/dist_train.sh CONFIG GPUS (torchrun, PyTorch DDP).
"""
import argparse
import os
import sys

from mmengine.config import DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import shufflenet_det  # noqa: F401  (registers modules; safe checkpoint loading for --resume)
from shufflenet_det.apis import prepare_config
from shufflenet_det.datasets import DatasetLayoutError, check_dataset_paths


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


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = prepare_config(args.config, args.work_dir, args.cfg_options, args.data_root,
                         args.launcher)
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
    except DatasetLayoutError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()
    return 0


if __name__ == '__main__':
    sys.exit(main())
