"""Evaluate a checkpoint on a config's test split (COCO minival for the detection configs).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl]
                         [--show-dir DIR] [--data-root DIR] [--cfg-options K=V ...]
                         [--launcher {none,pytorch,slurm,mpi}]

Prints the metrics and writes them to WORK_DIR/metrics.json, with the number of test
images and detections. A detector that detects nothing gets every AP reported as 0.0
with a warning. --out dumps the raw predictions (a pickle, as MMDetection's
DumpDetResults writes it); --show-dir draws the predictions on every test image.
Several GPUs or nodes: tools/dist_test.sh CONFIG CHECKPOINT GPUS (torchrun); without
CUDA, the same command runs that many CPU processes with the gloo backend.
"""
import argparse
import os
import sys

from shufflenet_det.apis import evaluate, run_tool
from shufflenet_det.config import CfgOptionsAction


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where the logs and metrics.json go')
    parser.add_argument('--out', help='dump the predictions to this .pkl file')
    parser.add_argument('--show-dir', help='draw the predictions into this folder')
    parser.add_argument('--data-root', help='dataset root replacing the config\'s data_root')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config settings')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    if args.out and not args.out.endswith(('.pkl', '.pickle')):
        parser.error(f'--out must name a .pkl or .pickle file, got {args.out}')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_tool(evaluate, args.config, args.checkpoint, work_dir=args.work_dir,
                    out=args.out, show_dir=args.show_dir, data_root=args.data_root,
                    cfg_options=args.cfg_options, launcher=args.launcher)


if __name__ == '__main__':
    sys.exit(main())
