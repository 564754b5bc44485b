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

Megvii's code applies the inverse of the paper's channel shuffle. Every g=3 file and
2.0x g=8 are reordered to the paper's shuffle exactly. The g=8 0.5x, 1.0x and 1.5x
files cannot be, and are written for ``shuffle_order='megvii'``, which the file's
``meta['arch']`` records and every loader checks against the model.

``--groups`` and ``--widen-factor`` name the architecture you expect; a file of
another one is refused with an error naming both. Without them any supported
architecture is accepted.

DST holds ``backbone.*`` and ``head.fc.*`` tensors (OpenMMLab classifier layout)
and ``meta``: ``arch``, ``source``, ``converted_from`` and ``input_convention``,
the mean, std and bgr_to_rgb that a detector's data preprocessor must use with
these weights. It is written atomically, and only after every check passed.

Exit status: 0 on success, 2 if the file was refused or DST cannot be written (a
folder, or in a read-only folder; checked first). The reason is on stderr, DST not
written.
"""
import argparse
import sys

from shufflenet_det.apis import run_tool
from shufflenet_det.checkpoint import convert_file
from shufflenet_det.fileio import check_writable


def parse_args(argv=None) -> argparse.Namespace:
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


def main(argv=None) -> int:
    args = parse_args(argv)
    # DST first: converting reads and checks the whole file before anything is written.
    return run_tool(check_writable, args.dst, 'DST') or run_tool(
        convert_file, args.src, args.dst, progress=lambda m: print(f'[convert] {m}', flush=True),
        tolerance=args.tolerance, groups=args.groups, widen_factor=args.widen_factor)


if __name__ == '__main__':
    sys.exit(main())
