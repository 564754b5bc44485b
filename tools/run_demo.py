"""The project's main job on a laptop: the embedded shapes demo, start to finish.

    python tools/run_demo.py [--work-dir work_dirs/demo]

Generates data/demo/ if it is missing (deterministic), trains Faster R-CNN with a
ShuffleNet 0.5x backbone from scratch (configs/faster_rcnn_shufflenet_demo.py),
evaluates on the held-out split with CocoMetric (the COCO table is printed), and
draws the detections on one held-out image. Exits 1 if bbox mAP is below --min-map.
"""
import argparse
import sys

from shufflenet_det.apis import demo_end_to_end, run_tool


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default='configs/faster_rcnn_shufflenet_demo.py')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--num-train', type=int, default=400, help='training images to generate')
    parser.add_argument('--num-val', type=int, default=60, help='held-out images to generate')
    parser.add_argument('--min-map', type=float, default=0.30,
                        help='fail (exit 1) below this bbox mAP@[.5:.95]')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_tool(demo_end_to_end, args.config, args.work_dir, args.num_train, args.num_val,
                    args.min_map, progress=lambda m: print(f'[demo] {m}', flush=True))


if __name__ == '__main__':
    sys.exit(main())
