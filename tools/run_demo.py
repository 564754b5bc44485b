"""The project's main job on a laptop: the embedded shapes demo, start to finish.

    python tools/run_demo.py [--work-dir work_dirs/demo]

Generates data/demo/ if it is missing (deterministic), trains Faster R-CNN with a
ShuffleNet 0.5x backbone from scratch (configs/faster_rcnn_shufflenet_demo.py),
evaluates on the held-out split with CocoMetric (the COCO table is printed), and
draws the detections on one held-out image. Exits 1 if bbox mAP is below --min-map.
"""
import argparse
import sys

import shufflenet_det  # noqa: F401
from shufflenet_det.apis.demo import run_demo


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default='configs/faster_rcnn_shufflenet_demo.py')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--num-train', type=int, default=400, help='training images to generate')
    parser.add_argument('--num-val', type=int, default=60, help='held-out images to generate')
    parser.add_argument('--min-map', type=float, default=0.30,
                        help='fail (exit 1) below this bbox mAP@[.5:.95]')
    args = parser.parse_args(argv)
    s = run_demo(args.config, args.work_dir, args.num_train, args.num_val,
                 progress=lambda m: print(f'[demo] {m}', flush=True))
    minutes = s['total_seconds'] / 60
    print(f'[demo] bbox mAP@[.5:.95] {s["bbox_mAP"]:.3f} (AP50 '
          f'{s["metrics"].get("coco/bbox_mAP_50", float("nan")):.3f}) after {s["epochs"]} '
          f'epochs; {minutes:.1f} min in all ({s["data_seconds"]:.0f} s data, '
          f'{s["train_and_eval_seconds"]:.0f} s training and evaluation)')
    print(f'[demo] {s["detections_drawn"]} detections drawn to {s["detections_image"]}')
    if s['bbox_mAP'] is None or s['bbox_mAP'] < args.min_map:
        print(f'[demo] below the bar of {args.min_map}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
