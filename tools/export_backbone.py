"""Keep only the backbone of a classifier checkpoint, for detectors.

    python tools/export_backbone.py work_dirs/shufflenet2x_g3_imagenet/iter_300000.pth \\
        checkpoints/shufflenet_v1_2x_g3_imagenet.pth

The output keeps the ``backbone.`` prefix and the checkpoint's recorded input
convention; detectors load it (or the classifier checkpoint itself) with
``init_cfg=dict(type='ShuffleNetPretrained', checkpoint=...)``.
"""
import argparse
import sys

from shufflenet_det.checkpoint import export_backbone


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='classifier checkpoint (from tools/train.py)')
    parser.add_argument('dst', help='backbone-only output file')
    args = parser.parse_args(argv)
    try:
        info = export_backbone(args.src, args.dst)
    except (FileNotFoundError, ValueError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    convention = info['meta'].get('input_convention', 'not recorded')
    print(f'wrote {info["tensors"]} backbone tensors to {args.dst}; input convention: '
          f'{convention}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
