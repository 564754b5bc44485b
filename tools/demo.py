"""Detect objects in one image and draw them with MMDetection's visualizer.

    python tools/demo.py IMAGE CONFIG CHECKPOINT --out-file out.png [--score-thr 0.3]
"""
import argparse
import os.path as osp
import sys

from mmdet.apis import init_detector

import shufflenet_det  # noqa: F401  (registers modules; safe checkpoint loading)
from shufflenet_det.checkpoint import load_strict, read_checkpoint
from shufflenet_det.visualization import draw_detections


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('image', help='image file')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out-file', required=True, help='where to write the drawn image')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='draw detections scoring at least this')
    parser.add_argument('--device', default='cpu', help='e.g. cpu or cuda:0')
    args = parser.parse_args(argv)
    if not 0.0 <= args.score_thr <= 1.0:
        parser.error(f'--score-thr must be in [0, 1], got {args.score_thr}')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    for what, path in (('image', args.image), ('config', args.config),
                       ('checkpoint', args.checkpoint)):
        if not osp.isfile(path):
            print(f'error: {what} not found: {path}', file=sys.stderr)
            return 2
    # init_detector loads non-strictly (and reads dataset_meta); loading the same tensors
    # strictly again makes any missing or unexpected key an error.
    model = init_detector(args.config, args.checkpoint, device=args.device)
    load_strict(model, read_checkpoint(args.checkpoint, args.device)[0], args.checkpoint)
    n = draw_detections(model, args.image, args.out_file, args.score_thr)
    print(f'{n} detections with score >= {args.score_thr} drawn to {args.out_file}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
