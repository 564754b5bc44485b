"""Detect objects in one image and draw them with MMDetection's visualizer.

    python tools/demo.py IMAGE CONFIG CHECKPOINT --out-file out.png [--score-thr 0.3]

The checkpoint loads strictly. A missing or undecodable image, config or checkpoint
stops with one line naming it (exit status 2).
"""
import argparse
import sys

from shufflenet_det.apis import demo, run_tool


def parse_args(argv=None) -> argparse.Namespace:
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
    return run_tool(demo, args.image, args.config, args.checkpoint, args.out_file,
                    args.score_thr, args.device)


if __name__ == '__main__':
    sys.exit(main())
