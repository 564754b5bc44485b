"""Convert a ShuffleNetV1 ImageNet checkpoint for shufflenet_det.

    python tools/convert_checkpoint.py SRC DST [--groups G] [--widen-factor W]

SRC is either an official Megvii file (keys ``module.first_conv.*``,
``module.features.N.branch_main_*``, ``module.classifier.0.*``) or an OpenMMLab
ShuffleNetV1 classifier checkpoint (keys ``backbone.conv1.*``,
``backbone.layers.S.U.*``, ``head.fc.*``, bare or under ``state_dict``); the
format is told from the keys and the architecture from the tensor shapes.
A Megvii file is converted and its features checked against the official
network (to ``--tolerance``); an OpenMMLab file must load strictly into
ShuffleNetClassifier and is written with its state dict unchanged.

``--groups`` and ``--widen-factor`` name the architecture you expect; a file of
another one is refused with an error naming both. Without them any supported
architecture is accepted.

DST holds ``backbone.*`` and ``head.fc.*`` tensors (OpenMMLab classifier layout)
and ``meta``: ``arch``, ``source``, ``converted_from`` and ``input_convention``,
the mean, std and bgr_to_rgb that a detector's data preprocessor must use with
these weights (Megvii: BGR, 0-255, not normalised; OpenMMLab: RGB, ImageNet
mean and std). It is written atomically, and only after every check passed.
A detector loads it with
``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``.

Exit status: 0 on success, 1 on any error (message on stderr, DST not written).
"""
import argparse
import sys
from typing import Optional, Sequence

from shufflenet_det.checkpoint.megvii import ConversionError, convert_file


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (Sequence[str], optional): Arguments; ``None`` reads ``sys.argv``.

    Returns:
        argparse.Namespace: ``src``, ``dst``, ``tolerance``, ``groups`` and
        ``widen_factor`` (the last two ``None`` unless given).
    """
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='Megvii checkpoint (e.g. Group3/models/snetv1_group3_2.0x'
                                    '.pth.tar) or OpenMMLab classifier checkpoint')
    parser.add_argument('dst', help='output file (written only after verification)')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='largest allowed feature difference from the official network '
                             '(Megvii files)')
    parser.add_argument('--groups', type=int, default=None, metavar='G',
                        help='expected groups (1, 2, 3, 4 or 8); refuse a file with others')
    parser.add_argument('--widen-factor', type=float, default=None, metavar='W',
                        help='expected widen factor (0.25, 0.5, 1.0, 1.5 or 2.0); refuse a file '
                             'with another')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the conversion.

    Args:
        argv (Sequence[str], optional): Command-line arguments; ``None`` reads
            ``sys.argv``.

    Returns:
        int: 0 on success, 1 if the file was refused (the reason is on stderr).
    """
    args = parse_args(argv)
    try:
        convert_file(args.src, args.dst, progress=lambda m: print(f'[convert] {m}', flush=True),
                     tolerance=args.tolerance, groups=args.groups,
                     widen_factor=args.widen_factor)
    except (ConversionError, FileNotFoundError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
