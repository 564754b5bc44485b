"""Parameters and multiply-adds of a ShuffleNet V1 classifier, or of a whole detector.

    python tools/get_flops.py --groups 3 --widen-factor 2.0
    python tools/get_flops.py --paper-table     # Table 1 and the official g=3 sizes vs the paper
    python tools/get_flops.py configs/faster_rcnn_shufflenet2x_coco.py --shape 600 800
    python tools/get_flops.py configs/pretrain/shufflenet1x_g3_imagenet.py   # at 224x224

Counted by MMEngine's FlopAnalyzer (one multiply-add = one FLOP), batch norm
excluded; see shufflenet_det/analysis/complexity.py.
"""
import argparse
import sys

from shufflenet_det.analysis import complexity_report
from shufflenet_det.apis import run_tool
from shufflenet_det.config import CfgOptionsAction
from shufflenet_det.models.backbones import GROUPS, WIDEN_FACTORS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?',
                        help='a detector or ImageNet classifier config (whole-model count)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input height and width for CONFIG (default: 600 800 for a '
                        'detector, 224 224 for a classifier config)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config settings, e.g. model.test_cfg.rpn.max_per_img=100')
    parser.add_argument('--groups', type=int, default=3, choices=GROUPS)
    parser.add_argument('--widen-factor', type=float, default=1.0, choices=WIDEN_FACTORS)
    parser.add_argument('--se', action='store_true', help='Squeeze-and-Excitation units')
    parser.add_argument('--shallow', action='store_true', help='half the units per stage')
    parser.add_argument('--size', type=int, default=224, help='square input side')
    parser.add_argument('--paper-table', action='store_true',
                        help='print Table 1 and the official g=3 sizes next to the paper')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    shape = tuple(args.shape) if args.shape else None
    return run_tool(complexity_report, args.config, shape, args.cfg_options,
                    args.groups, args.widen_factor, args.se, args.shallow, args.size,
                    args.paper_table)


if __name__ == '__main__':
    sys.exit(main())
