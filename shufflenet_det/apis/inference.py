"""``tools/demo.py``: a detector (``.pth`` or ``.onnx``) run on an image, or on each image of
a folder, and drawn; and :class:`StrictDetInferencer` for scripts."""
import os
import os.path as osp
from functools import partial
from typing import Callable

from mmdet.apis import DetInferencer

from ..checkpoint import load_detector
from ..config import load_config
from ..datasets import read_image
from ..datasets.image_loading import strict_image_loading
from ..deploy import ONNXRuntimeDetector
from ..errors import ConfigError, InputError, InputFileNotFoundError
from ..fileio import check_writable
from ..images import IMAGE_EXTENSIONS
from ..visualization import draw_detections, draw_result


class StrictDetInferencer(DetInferencer):
    """MMDetection's ``DetInferencer`` whose image files load strictly: a missing, empty or
    undecodable file raises an ``ImageFileError`` naming it (``InferencerLoader`` fails
    inside OpenCV). ``import shufflenet_det`` leaves ``DetInferencer`` itself unchanged."""

    def _init_pipeline(self, cfg):
        pipeline = super()._init_pipeline(cfg)
        pipeline.transforms = [strict_image_loading(t) for t in pipeline.transforms]
        return pipeline


def _drawer(config: str, checkpoint: str, device: str) -> Callable[[str, str, float], int]:
    """The model loaded once, as ``draw(image, out_file, score_thr) -> detections drawn``;
    an ``.onnx`` file runs in ONNX Runtime with the config's pipeline and visualizer."""
    if not str(checkpoint).endswith('.onnx'):
        return partial(draw_detections, load_detector(config, checkpoint, device))
    cfg = load_config(config)
    detector = ONNXRuntimeDetector(checkpoint, config=cfg)
    classes = detector.classes or cfg.get('metainfo', {}).get('classes')

    def draw(image: str, out_file: str, score_thr: float) -> int:
        pixels = read_image(image)
        return draw_result(pixels, detector(pixels), cfg.visualizer,
                           dict(classes=classes) if classes else None, out_file, score_thr)

    return draw


def demo(image: str, config: str, checkpoint: str, out_file: str, score_thr: float = 0.3,
         device: str = 'cpu', progress: Callable[[str], None] = print) -> int:
    """Draw the detections scoring ``score_thr`` or more on ``image`` into ``out_file``.

    A folder ``image`` has each of its images (by extension, not recursive) drawn into
    the folder ``out_file`` under its own name; an image that fails with an InputError is
    skipped with a warning, and it is an error only if none could be drawn. Outputs, and a
    single image, are checked before the model is loaded. Returns the images drawn.
    """
    folder = osp.isdir(image)
    images = [image]
    if folder:
        images = sorted(osp.join(image, name) for name in os.listdir(image)
                        if name.lower().endswith(IMAGE_EXTENSIONS))
        if not images:
            raise InputFileNotFoundError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) in folder '
                                         f'{image}')
        if str(out_file).lower().endswith(IMAGE_EXTENSIONS):
            raise ConfigError(f'{image} is a folder: its images are drawn into a folder, '
                              f'--out-dir DIR, not into the image file {out_file}')
    check_writable(out_file, '--out-dir' if folder else '--out-file', directory=folder)
    if not folder:
        read_image(image)
    draw = _drawer(config, checkpoint, device)
    skipped = []
    for path in images:
        out = osp.join(out_file, osp.basename(path)) if folder else out_file
        try:
            drawn = draw(path, out, score_thr)
        except InputError as exc:
            if not folder:
                raise
            skipped.append(path)
            progress(f'warning: skipped {path}: {exc}')
            continue
        progress(f'{drawn} detections with score >= {score_thr} drawn to {out}')
    if skipped and len(skipped) == len(images):
        raise InputError(f'none of the {len(images)} images in {image} could be drawn '
                         '(the warnings above name each one and why)')
    if skipped:
        progress(f'warning: {len(skipped)} of {len(images)} images in {image} were skipped '
                 '(named above); the others are drawn')
    return len(images) - len(skipped)
