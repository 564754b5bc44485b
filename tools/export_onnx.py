"""Export a ShuffleNet V1 backbone or classifier to ONNX and check it with ONNX Runtime.

    python tools/export_onnx.py --groups 3 --widen-factor 1.0 --out shufflenet1x.onnx
    python tools/export_onnx.py --classifier --checkpoint CKPT --out cls.onnx --shape 1 3 224 224

The backbone exports its Stage 2-4 maps (strides 8, 16, 32); the classifier its
logits. With --checkpoint, a file that records its architecture (converted and
exported files do) decides groups, width and shuffle order. Inputs follow the
weights' convention (BGR 0-255 for this project's and Megvii's). The export fails
(exit 1) if ONNX Runtime's outputs differ from PyTorch's by more than --tolerance.
"""
import argparse
import sys

from shufflenet_det.apis import run_tool
from shufflenet_det.deploy import export_shufflenet_onnx
from shufflenet_det.models.backbones import GROUPS, WIDEN_FACTORS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--groups', type=int, choices=GROUPS,
                        help='default: the checkpoint\'s, else 3')
    parser.add_argument('--widen-factor', type=float, choices=WIDEN_FACTORS,
                        help='default: the checkpoint\'s, else 1.0')
    parser.add_argument('--classifier', action='store_true', help='export the classifier')
    parser.add_argument('--num-classes', type=int, default=1000)
    parser.add_argument('--checkpoint', help='weights (random if omitted)')
    parser.add_argument('--shape', type=int, nargs=4, default=(1, 3, 224, 224),
                        metavar=('N', 'C', 'H', 'W'))
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--tolerance', type=float, default=1e-4)
    parser.add_argument('--out', required=True, help='output .onnx file')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_tool(export_shufflenet_onnx, args.out, args.checkpoint, args.groups,
                    args.widen_factor, args.classifier, args.num_classes, tuple(args.shape),
                    args.opset, args.tolerance)


if __name__ == '__main__':
    sys.exit(main())
