"""Convert an official Megvii ShuffleNetV1 checkpoint for shufflenet_det.

    python tools/convert_checkpoint.py SRC.pth.tar DST.pth

DST holds ``backbone.*`` and ``head.fc.*`` tensors (OpenMMLab classifier layout)
and ``meta['input_convention']``: the mean, std and bgr_to_rgb that a detector's
data preprocessor must use with these weights (BGR, 0-255, not normalised).
A detector loads it with
``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``.
"""
import argparse
import sys

from shufflenet_det.checkpoint.megvii import ConversionError, convert_file


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='official checkpoint, e.g. Group3/models/snetv1_group3_2.0x.pth.tar')
    parser.add_argument('dst', help='output file (written only after verification)')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='largest allowed feature difference from the official network')
    args = parser.parse_args(argv)
    try:
        convert_file(args.src, args.dst, progress=lambda m: print(f'[convert] {m}', flush=True),
                     tolerance=args.tolerance)
    except (ConversionError, FileNotFoundError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
