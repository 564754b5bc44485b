"""Speed of ShuffleNet V1 next to its peers, measured in one run.

    # backbones (classifiers) at the paper's Table 8 sizes, with the fast-path ablation
    python tools/benchmark.py backbone --shufflenet 1x_g3 2x_g3 0.5x_g3 --ablation --onnx \
        --threads 1 2 --out-md bench.md --out-json bench.json
    # detectors next to torchvision's Faster R-CNN MobileNetV3 FPN models, eager and in
    # ONNX Runtime (fp32 and int8)
    python tools/benchmark.py detector configs/faster_rcnn_shufflenet1x_fpn_coco.py --deploy \
        --onnx --int8
    # the same eager rows on a GPU, batch 1
    python tools/benchmark.py detector configs/faster_rcnn_shufflenet2x_coco.py \
        configs/faster_rcnn_shufflenet1x_fpn_300_coco.py --device cuda --threads 1
    # training images/s and peak GPU memory, fp32 and AMP, next to MMDetection's R-50 C4
    python tools/benchmark.py train configs/faster_rcnn_shufflenet2x_coco.py \
        mmdet::faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py --device cuda --amp
    # the ImageNet loader's decode+augment images/s per process (0: the main process)
    python tools/benchmark.py loader configs/pretrain/shufflenet1x_g3_imagenet.py \
        --data-root data/imagenet --workers 0 4

Models are timed in interleaved rounds (each round runs every model once), so drift
on a shared machine hits all rows alike; compare ratios within one run. Weights are
random. Detectors run in eval mode with their test-time settings; with random
weights NMS would keep an arbitrary number of proposals, so the RPN's NMS is lifted
on both sides and each RoI head sees its configured count (300 here; 150 and 1000
for torchvision's 320 and full-size models, or --peer-proposals).
"""
import argparse
import sys

from shufflenet_det.analysis import benchmark as bench
from shufflenet_det.apis import run_tool
from shufflenet_det.config import CfgOptionsAction


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='mode', required=True)
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument('--out-json', help='write the rows as JSON')
    out.add_argument('--out-md', help='write the Markdown table')
    common = argparse.ArgumentParser(add_help=False, parents=[out])
    common.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    common.add_argument('--warmup', type=int, default=3)
    common.add_argument('--repeats', type=int, default=20)
    common.add_argument('--runs', type=int, default=1,
                        help='measure everything this many times, each built anew; the table '
                             'gives the median of the runs\' medians and each of them')
    b = sub.add_parser('backbone', parents=[common], help='classifiers at Table 8 sizes')
    b.add_argument('--shufflenet', dest='specs', nargs='+',
                   default=['1x_g3', '2x_g3', '0.5x_g3'],
                   help='WIDTHx_gGROUPS, e.g. 1x_g3 0.5x_g8')
    b.add_argument('--peers', nargs='+', default=list(bench.BACKBONE_PEERS))
    b.add_argument('--sizes', nargs='+', default=['224x224', '480x640', '720x1280'])
    b.add_argument('--batch', type=int, default=1)
    b.add_argument('--ablation', action='store_true', help='a row per fast-path step')
    b.add_argument('--onnx', action='store_true', help='ONNX Runtime rows')
    b.add_argument('--int8', action='store_true', help='int8 ONNX Runtime rows (with --onnx)')
    b.add_argument('--compile', dest='compile_', action='store_true',
                   help='a torch.compile row (slow to build)')
    d = sub.add_parser('detector', parents=[common], help='detector configs vs torchvision')
    d.add_argument('configs', nargs='+')
    d.add_argument('--deploy', action='store_true', help='also time the fast path')
    d.add_argument('--onnx', action='store_true',
                   help='ONNX Runtime rows for every detector, torchvision\'s included')
    d.add_argument('--int8', action='store_true', help='int8 ONNX Runtime rows (with --onnx)')
    d.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                   help='override settings of every config, e.g. '
                   'model.test_cfg.rpn.max_per_img=150')
    d.add_argument('--device', default='cpu',
                   help="'cuda[:N]': eager rows on that GPU (synchronised; no --onnx)")
    d.add_argument('--short-side', type=int,
                   help='input shorter side (default: the config\'s test scale); images are 4:3')
    d.add_argument('--peer-proposals', type=int, nargs='+', metavar='N',
                   help='time torchvision\'s model at each post-NMS proposal count')
    t = sub.add_parser('train', parents=[out], help='training images/s and peak memory')
    t.add_argument('configs', nargs='+', help='config files, or mmdet::... for mmdet\'s own')
    t.add_argument('--device', default='cpu', help="'cpu' or 'cuda[:N]'")
    t.add_argument('--batch', type=int, help='images per step (default: the config\'s)')
    t.add_argument('--size', help='HxW or one side (default: the config\'s training scale '
                   'on a 4:3 image)')
    t.add_argument('--iters', type=int, default=10, help='timed steps')
    t.add_argument('--warmup', type=int, default=2, help='untimed steps first')
    t.add_argument('--amp', action='store_true', help='an AMP row beside each fp32 row')
    t.add_argument('--threads', type=int, default=2, help='CPU threads')
    ld = sub.add_parser('loader', parents=[out],
                        help='ImageNet decode+augment images/s per loader process')
    ld.add_argument('config', help='a pretraining config')
    ld.add_argument('--data-root', help='ImageNet root holding train/')
    ld.add_argument('--synthetic', type=int, default=0,
                    help='read N generated 500x375 JPEGs instead')
    ld.add_argument('--workers', type=int, nargs='+', default=[0],
                    help='loader processes to time (0: the main process, one core)')
    ld.add_argument('--images', type=int, default=200, help='images per measurement')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = vars(parse_args(argv))
    function = {'backbone': bench.benchmark_backbones,
                'detector': bench.benchmark_detectors,
                'train': bench.benchmark_training,
                'loader': bench.loader_throughput}[args.pop('mode')]
    return run_tool(function, **args, progress=lambda m: print(f'[benchmark] {m}', flush=True))


if __name__ == '__main__':
    sys.exit(main())
