"""Parameters and multiply-adds of a ShuffleNet V1 classifier, or of a whole detector.

    python tools/get_flops.py --groups 3 --widen-factor 2.0
    python tools/get_flops.py --paper-table     # Table 1 and the official g=3 sizes vs the paper
    python tools/get_flops.py configs/faster_rcnn_shufflenet2x_coco.py --shape 600 800

Counted by MMEngine's FlopAnalyzer (one multiply-add = one FLOP), batch norm
excluded; see shufflenet_det/analysis/complexity.py.
"""
import argparse

from mmdet.registry import MODELS
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

import shufflenet_det  # noqa: F401  (registers the models)
from shufflenet_det.analysis import PAPER_MFLOPS, classifier_complexity, detector_complexity
from shufflenet_det.models import ShuffleNetV1


def paper_table() -> str:
    rows = ['| model | params (M) | MFLOPs, this project | MFLOPs, paper | difference |',
            '|---|---|---|---|---|']
    for (groups, widen), paper in PAPER_MFLOPS.items():
        c = classifier_complexity(groups, widen)
        mflops = c['flops'] / 1e6
        rows.append(f'| {widen}x g={groups} | {c["params"] / 1e6:.2f} | {mflops:.1f} | {paper} | '
                    f'{100 * (mflops - paper) / paper:+.1f}% |')
    return '\n'.join(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?', help='a detector config (whole-detector count)')
    parser.add_argument('--shape', type=int, nargs=2, default=(600, 800), metavar=('H', 'W'),
                        help='detector input height and width (default: 600 800)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. model.test_cfg.rpn.max_per_img=100')
    parser.add_argument('--groups', type=int, default=3, choices=sorted(ShuffleNetV1.base_channels))
    parser.add_argument('--widen-factor', type=float, default=1.0,
                        choices=ShuffleNetV1.widen_factors)
    parser.add_argument('--se', action='store_true', help='Squeeze-and-Excitation units')
    parser.add_argument('--shallow', action='store_true', help='half the units per stage')
    parser.add_argument('--size', type=int, default=224, help='square input side')
    parser.add_argument('--paper-table', action='store_true',
                        help='print Table 1 and the official g=3 sizes next to the paper')
    args = parser.parse_args(argv)
    init_default_scope('mmdet')
    if args.paper_table:
        print(paper_table())
        return
    if args.config:
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        model = MODELS.build(cfg.model).eval()
        h, w = args.shape
        c = detector_complexity(model, h, w)
        rois = '' if c['rois'] is None else f', box head on {c["rois"]} proposals'
        print(f'{args.config} at {h}x{w}: {c["params"] / 1e6:.2f} M parameters, '
              f'{c["flops"] / 1e9:.2f} GFLOPs (multiply-adds{rois})')
        return
    c = classifier_complexity(args.groups, args.widen_factor, args.size,
                              with_se=args.se, shallow=args.shallow)
    print(f'ShuffleNetV1 {args.widen_factor}x g={args.groups}'
          f'{" +SE" if args.se else ""}{" shallow" if args.shallow else ""} '
          f'at {args.size}x{args.size}: {c["params"] / 1e6:.3f} M parameters, '
          f'{c["flops"] / 1e6:.1f} MFLOPs (multiply-adds)')


if __name__ == '__main__':
    main()
