"""Keep only the backbone of a classifier checkpoint, for detectors.

    python tools/export_backbone.py work_dirs/shufflenet2x_g3_imagenet/iter_300000.pth \\
        checkpoints/shufflenet_v1_2x_g3_imagenet.pth

The output keeps the ``backbone.`` prefix, the checkpoint's recorded architecture and
input convention; detectors load it (or the classifier checkpoint itself) with
``init_cfg=dict(type='ShuffleNetPretrained', checkpoint=...)``.
"""
import argparse
import sys

from shufflenet_det.apis import run_tool
from shufflenet_det.checkpoint import export_backbone


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='classifier checkpoint (from tools/train.py)')
    parser.add_argument('dst', help='backbone-only output file')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_tool(export_backbone, args.src, args.dst)


if __name__ == '__main__':
    sys.exit(main())
