"""CPU speed of ShuffleNet V1 next to its peers, measured in one run.

    # backbones (classifiers) at the paper's Table 8 sizes, with the fast-path ablation
    python tools/benchmark.py backbone --shufflenet 1x_g3 2x_g3 0.5x_g3 --ablation --onnx \
        --threads 1 2 --out-md bench.md --out-json bench.json
    # detectors next to torchvision's Faster R-CNN MobileNetV3 FPN models, eager and in
    # ONNX Runtime (fp32 and int8)
    python tools/benchmark.py detector configs/faster_rcnn_shufflenet1x_fpn_coco.py --deploy \
        --onnx --int8
    # training images/s of a config on CPU
    python tools/benchmark.py train configs/faster_rcnn_shufflenet_demo.py --batch 8 --size 256

Models are timed in interleaved rounds (each round runs every model once), so drift
on a shared machine hits all rows alike; compare ratios within one run. Weights are
random. Detectors run in eval mode with their test-time settings; with random
weights NMS would keep an arbitrary number of proposals, so the RPN's NMS is lifted
on both sides and each RoI head sees its configured count (300 here; 150 and 1000
for torchvision's 320 and full-size models). See shufflenet_det/analysis/benchmark.py.
"""
import argparse
import sys

from mmengine.config import DictAction

from shufflenet_det.analysis import benchmark as bench
from shufflenet_det.analysis import detector_benchmark
from shufflenet_det.apis import run_tool


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='mode', required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    common.add_argument('--warmup', type=int, default=3)
    common.add_argument('--repeats', type=int, default=20)
    common.add_argument('--out-json', help='write the rows as JSON')
    common.add_argument('--out-md', help='write the Markdown table')
    b = sub.add_parser('backbone', parents=[common], help='classifiers at Table 8 sizes')
    b.add_argument('--shufflenet', nargs='+', default=['1x_g3', '2x_g3', '0.5x_g3'],
                   help='WIDTHx_gGROUPS, e.g. 1x_g3 0.5x_g8')
    b.add_argument('--peers', nargs='+', default=list(bench.BACKBONE_PEERS))
    b.add_argument('--sizes', nargs='+', default=['224x224', '480x640', '720x1280'])
    b.add_argument('--batch', type=int, default=1)
    b.add_argument('--ablation', action='store_true', help='a row per fast-path step')
    b.add_argument('--onnx', action='store_true', help='ONNX Runtime rows')
    b.add_argument('--int8', action='store_true', help='int8 ONNX Runtime rows (with --onnx)')
    b.add_argument('--compile', action='store_true', help='a torch.compile row (slow to build)')
    d = sub.add_parser('detector', parents=[common], help='detector configs vs torchvision')
    d.add_argument('configs', nargs='+')
    d.add_argument('--deploy', action='store_true', help='also time the fast path')
    d.add_argument('--onnx', action='store_true',
                   help='ONNX Runtime rows for every detector, torchvision\'s included')
    d.add_argument('--int8', action='store_true', help='int8 ONNX Runtime rows (with --onnx)')
    d.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override settings of every config, e.g. '
                   'model.test_cfg.rpn.max_per_img=150')
    d.add_argument('--short-side', type=int,
                   help='input shorter side (default: the config\'s test scale); images are 4:3')
    t = sub.add_parser('train', help='training images/s of a detector config')
    t.add_argument('config')
    t.add_argument('--batch', type=int, default=8)
    t.add_argument('--size', type=int, default=256)
    t.add_argument('--iters', type=int, default=10)
    t.add_argument('--threads', type=int, default=2)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    say = lambda m: print(f'[benchmark] {m}', flush=True)  # noqa: E731
    if args.mode == 'train':
        return run_tool(bench.benchmark_training, args.config, args.batch, args.size, args.iters,
                        args.threads, progress=say)
    common = dict(threads=args.threads, warmup=args.warmup, repeats=args.repeats,
                  out_md=args.out_md, out_json=args.out_json, progress=say)
    if args.mode == 'backbone':
        return run_tool(bench.benchmark_backbones, args.shufflenet, args.peers, args.sizes,
                        args.batch, args.ablation, args.onnx, args.compile, int8=args.int8,
                        **common)
    return run_tool(detector_benchmark.benchmark_detectors, args.configs, args.deploy,
                    args.short_side, args.cfg_options, onnx=args.onnx, int8=args.int8, **common)


if __name__ == '__main__':
    sys.exit(main())
