"""Evaluate a checkpoint on a config's test split (COCO minival for the detection configs).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl]
                         [--show-dir DIR] [--data-root DIR] [--cfg-options K=V ...]
                         [--launcher {none,pytorch,slurm,mpi}]

Prints the metrics and writes them to WORK_DIR/metrics.json. --out dumps the raw
predictions (a pickle, as MMDetection's DumpDetResults writes it); --show-dir draws
the predictions on every test image.
"""
import argparse
import json
import os
import os.path as osp
import sys

from mmengine.config import DictAction
from mmengine.dist import is_main_process
from mmengine.evaluator import DumpResults
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import shufflenet_det  # noqa: F401  (registers modules; safe checkpoint loading)
from shufflenet_det.apis import prepare_config
from shufflenet_det.checkpoint import load_checkpoint_file
from shufflenet_det.datasets import DatasetLayoutError, check_dataset_paths
from shufflenet_det.engine import setup_cpu_distributed
from shufflenet_det.fileio import atomic_open


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where the logs and metrics.json go')
    parser.add_argument('--out', help='dump the predictions to this .pkl file')
    parser.add_argument('--show-dir', help='draw the predictions into this folder')
    parser.add_argument('--data-root', help='dataset root replacing the config\'s data_root')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    if args.out and not args.out.endswith(('.pkl', '.pickle')):
        parser.error(f'--out must name a .pkl or .pickle file, got {args.out}')
    return args


def _dump_metric(model, out_file: str):
    from mmdet.evaluation import DumpDetResults
    from mmdet.models.detectors import BaseDetector
    dump = DumpDetResults if isinstance(getattr(model, 'module', model), BaseDetector) \
        else DumpResults
    return dump(out_file_path=out_file)


def _write_json_atomically(obj, path: str) -> None:
    with atomic_open(path) as f:
        json.dump(obj, f, indent=2)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        load_checkpoint_file(args.checkpoint)  # a bad file fails here, with its name
        cfg = prepare_config(args.config, args.work_dir, args.cfg_options, args.data_root,
                             args.launcher)
        setup_cpu_distributed(cfg)
    except (OSError, ValueError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    # The Runner's own load_from is not strict; the checkpoint is loaded below with
    # strict=True, so that a mismatched file fails instead of evaluating a partial model.
    cfg.load_from = None
    if args.show_dir:
        cfg.default_hooks.visualization.draw = True
        # An absolute path, so that the images land where asked rather than under
        # work_dir/timestamp/.
        cfg.default_hooks.visualization.test_out_dir = osp.abspath(args.show_dir)
    try:
        check_dataset_paths(cfg, splits=('test_dataloader', 'Metric'))
    except DatasetLayoutError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.load_checkpoint(args.checkpoint, map_location='cpu', strict=True)
    partial = None
    if args.out:
        # Predictions go to a temporary file first: a run that fails leaves no half file.
        out_dir = osp.dirname(osp.abspath(args.out))
        os.makedirs(out_dir, exist_ok=True)
        partial = osp.join(out_dir, f'.{osp.basename(args.out)}.partial.pkl')
        runner.test_evaluator.metrics.append(_dump_metric(runner.model, partial))
    try:
        metrics = runner.test()
    except BaseException:
        if partial and osp.exists(partial):
            os.remove(partial)
        raise
    if is_main_process():
        if partial:
            os.replace(partial, args.out)
            print(f'predictions written to {args.out}')
        path = osp.join(cfg.work_dir, 'metrics.json')
        _write_json_atomically({k: float(v) if isinstance(v, (int, float)) else v
                                for k, v in metrics.items()}, path)
        print(f'metrics written to {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
