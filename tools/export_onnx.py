"""Export a ShuffleNet V1 backbone or classifier to ONNX and check it with ONNX Runtime.

    python tools/export_onnx.py --groups 3 --widen-factor 1.0 --out shufflenet1x.onnx
    python tools/export_onnx.py --classifier --checkpoint CKPT --out cls.onnx --shape 1 3 224 224

The backbone exports its Stage 2-4 maps (strides 8, 16, 32); the classifier its
logits. Inputs follow the weights' convention (BGR 0-255 for this project's and
Megvii's). The export fails (exit 1) if ONNX Runtime's outputs differ from
PyTorch's by more than --tolerance. Detectors are not exported: their NMS and
RoIAlign come from mmcv and export only through MMDeploy.
"""
import argparse
import sys

import torch
from mmengine.registry import init_default_scope

import shufflenet_det  # noqa: F401
from shufflenet_det.checkpoint import load_strict, read_checkpoint
from shufflenet_det.deploy import export_onnx, max_abs_diff
from shufflenet_det.models import ShuffleNetClassifier, ShuffleNetV1
from shufflenet_det.models.backbones.shufflenet_v1 import BASE_CHANNELS, WIDEN_FACTORS


def build(args):
    backbone = dict(type='ShuffleNetV1', groups=args.groups, widen_factor=args.widen_factor)
    if args.classifier:
        model = ShuffleNetClassifier(backbone=dict(backbone, out_indices=(3, )),
                                     num_classes=args.num_classes,
                                     data_preprocessor=dict(type='BaseDataPreprocessor'))
    else:
        model = ShuffleNetV1(groups=args.groups, widen_factor=args.widen_factor)
    if args.checkpoint:
        state, _ = read_checkpoint(args.checkpoint)
        if not args.classifier:
            state = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
        load_strict(model, state, args.checkpoint)
    else:
        model.init_weights()
    return model.eval()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--groups', type=int, default=3, choices=sorted(BASE_CHANNELS))
    parser.add_argument('--widen-factor', type=float, default=1.0, choices=WIDEN_FACTORS)
    parser.add_argument('--classifier', action='store_true', help='export the classifier')
    parser.add_argument('--num-classes', type=int, default=1000)
    parser.add_argument('--checkpoint', help='weights (random if omitted)')
    parser.add_argument('--shape', type=int, nargs=4, default=(1, 3, 224, 224),
                        metavar=('N', 'C', 'H', 'W'))
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--tolerance', type=float, default=1e-4)
    parser.add_argument('--out', required=True, help='output .onnx file')
    args = parser.parse_args(argv)
    init_default_scope('mmdet')
    model = build(args)
    export_onnx(model, args.out, tuple(args.shape), args.opset)
    x = torch.rand(*args.shape, generator=torch.Generator().manual_seed(0)) * 255
    diff = max_abs_diff(model, args.out, x)
    print(f'wrote {args.out}; ONNX Runtime vs PyTorch max abs diff {diff:.2e}')
    if not diff <= args.tolerance:
        print(f'error: difference above --tolerance {args.tolerance}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
