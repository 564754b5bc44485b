"""Detect objects in an image, or in every image of a folder, and draw them with
MMDetection's visualizer.

    python tools/demo.py IMAGE CONFIG CHECKPOINT --out-file out.png [--score-thr 0.3]
    python tools/demo.py FOLDER CONFIG CHECKPOINT --out-dir drawn/

The checkpoint loads strictly (or CHECKPOINT is an .onnx file from tools/export_onnx.py).
A missing or broken config or checkpoint, a missing or undecodable IMAGE, or an output
that cannot be written stops with one line naming it (exit status 2), before anything
is drawn. In a FOLDER (its .jpg, .jpeg, .png, .ppm, .bmp, .pgm, .tif, .tiff and .webp
files), an image that cannot be read is skipped with a warning naming it; the others
are drawn under their own names, and a count of the skipped ones ends the run (exit
status 0; 2 if none could be drawn).
"""
import argparse
import sys

from shufflenet_det.apis import demo, run_tool


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('image', help='image file, or a folder of images')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out-file', '--out-dir', dest='out_file', required=True,
                        help='where to write the drawn image (for a folder of images: the '
                        'folder to draw them into)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='draw detections scoring at least this')
    parser.add_argument('--device', default='cpu', help='e.g. cpu or cuda:0')
    args = parser.parse_args(argv)
    if not 0.0 <= args.score_thr <= 1.0:
        parser.error(f'--score-thr must be in [0, 1], got {args.score_thr}')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_tool(demo, args.image, args.config, args.checkpoint, args.out_file,
                    args.score_thr, args.device)


if __name__ == '__main__':
    sys.exit(main())
