"""Export a trained detector, or a ShuffleNet V1 backbone or classifier, to ONNX.

    # a Faster R-CNN config and its checkpoint: one standard ONNX graph (opset 17, default
    # domain only: preprocessing, backbone, RPN with NMS, RoiAlign, box head, per-class NMS)
    python tools/export_onnx.py configs/faster_rcnn_shufflenet1x_fpn_300_coco.py CKPT --out det.onnx
    # and its int8 version (det_int8.onnx), calibrated on 100 training images
    python tools/export_onnx.py CONFIG CKPT --out det.onnx --int8 --calib-dir data/coco/train2017
    # the backbone (Stage 2-4 maps) or the classifier (logits)
    python tools/export_onnx.py --groups 3 --widen-factor 1.0 --out shufflenet1x.onnx
    python tools/export_onnx.py --classifier --checkpoint CKPT --out cls.onnx --shape 1 3 224 224

A detector's graph takes the image as the config's test pipeline leaves it after Resize
(BGR, 0-255) and returns boxes in that image's pixels; shufflenet_det.deploy's
ONNXRuntimeDetector runs the pipeline around it, and tools/test.py and tools/demo.py take
the .onnx file in place of the checkpoint, with the config it was exported from (another
config is refused, naming the first difference). A backbone or classifier export is
checked against PyTorch and fails (exit 1) above --tolerance. The files appear only once
written and checked (a detector's graph: default ONNX domain, onnx.checker, one ONNX
Runtime run), under a temporary name until then; a failure leaves none, and an --out
that cannot be written is refused before the export starts. With --checkpoint, a file
that records its architecture (converted and exported files do) decides groups, width
and shuffle order.
"""
import argparse
import sys

from shufflenet_det.apis import run_tool
from shufflenet_det.deploy import export_detector, export_shufflenet_onnx
from shufflenet_det.models.backbones import GROUPS, WIDEN_FACTORS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?', help='a Faster R-CNN config (detector export)')
    parser.add_argument('detector_checkpoint', nargs='?', metavar='checkpoint',
                        help='the detector\'s checkpoint')
    parser.add_argument('--out', required=True, help='output .onnx file')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--int8', action='store_true',
                        help='also write OUT_int8.onnx (ONNX Runtime static quantization, QDQ)')
    parser.add_argument('--calib-dir', help='images for the int8 calibration (with --int8)')
    parser.add_argument('--calib-num', type=int, default=100,
                        help='how many of them (the first, sorted by name)')
    backbone = parser.add_argument_group('backbone or classifier (no CONFIG)')
    backbone.add_argument('--groups', type=int, choices=GROUPS,
                          help='default: the checkpoint\'s, else 3')
    backbone.add_argument('--widen-factor', type=float, choices=WIDEN_FACTORS,
                          help='default: the checkpoint\'s, else 1.0')
    backbone.add_argument('--classifier', action='store_true', help='export the classifier')
    backbone.add_argument('--num-classes', type=int, default=1000)
    backbone.add_argument('--checkpoint', help='weights (random if omitted)')
    backbone.add_argument('--shape', type=int, nargs=4, default=(1, 3, 224, 224),
                          metavar=('N', 'C', 'H', 'W'))
    backbone.add_argument('--tolerance', type=float, default=1e-4)
    args = parser.parse_args(argv)
    if args.config and not args.detector_checkpoint:
        parser.error('a detector export needs CONFIG and CHECKPOINT')
    if args.int8 and not args.calib_dir:
        parser.error('--int8 needs --calib-dir DIR (images to calibrate on)')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    int8 = dict(int8=args.int8, calib_dir=args.calib_dir, calib_num=args.calib_num)
    if args.config:
        return run_tool(export_detector, args.config, args.detector_checkpoint, args.out,
                        args.opset, **int8)
    return run_tool(export_shufflenet_onnx, args.out, args.checkpoint, args.groups,
                    args.widen_factor, args.classifier, args.num_classes, tuple(args.shape),
                    args.opset, args.tolerance, **int8)


if __name__ == '__main__':
    sys.exit(main())
