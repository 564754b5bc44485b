"""Train a detector (or the ImageNet classifier) with MMEngine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                          [--auto-scale-lr] [--from-scratch] [--data-root DIR]
                          [--cfg-options K=V ...] [--launcher {none,pytorch,slurm,mpi}]

Several GPUs or nodes: tools/dist_train.sh CONFIG GPUS (torchrun, PyTorch DDP). Without
CUDA, the same command runs that many CPU processes with the gloo backend. Bad input
(a missing config, dataset or checkpoint, a setting that cannot work) stops with one
line naming it and exit status 2. A detector config's ImageNet checkpoint must exist:
without it the run stops and says how to get it, unless --from-scratch asks to train
without it (every BN layer and stage then trains: norm_eval=False, frozen_stages=-1).
When the total batch differs from the one the lr is set for (auto_scale_lr), one
warning gives the lr that --auto-scale-lr would use.
"""
import argparse
import os
import sys

from shufflenet_det.apis import run_tool, train
from shufflenet_det.config import CfgOptionsAction


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr linearly with the total batch size '
                        '(the config\'s auto_scale_lr.base_batch_size is the reference)')
    parser.add_argument('--from-scratch', action='store_true',
                        help='train without the ImageNet checkpoints the config names; sets '
                        'norm_eval=False and frozen_stages=-1 so that every BN layer and stage '
                        'trains')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or from the latest checkpoint in the work '
                        'dir if no CKPT is given')
    parser.add_argument('--data-root', help='dataset root replacing the config\'s data_root')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config settings, e.g. train_cfg.max_epochs=6')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_tool(train, args.config, work_dir=args.work_dir, amp=args.amp,
                    auto_scale_lr=args.auto_scale_lr, resume=args.resume,
                    from_scratch=args.from_scratch,
                    data_root=args.data_root, cfg_options=args.cfg_options,
                    launcher=args.launcher)


if __name__ == '__main__':
    sys.exit(main())
