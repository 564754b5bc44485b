"""``tools/demo.py``: a detector (PyTorch or ONNX) run on an image, or on every image of a
folder, and drawn; and :class:`StrictDetInferencer`, MMDetection's ``DetInferencer`` with
the project's strict image loading, for scripts."""
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
    """``DetInferencer`` whose image files load through
    :class:`~shufflenet_det.datasets.image_loading.StrictInferencerLoader`.

    A missing, empty or undecodable image raises an
    :class:`~shufflenet_det.images.ImageFileError` naming the file, where mmdet's
    ``InferencerLoader`` fails inside OpenCV. Arrays, and everything else, are as in
    ``DetInferencer``, which itself stays MMDetection's: ``import shufflenet_det``
    replaces none of its steps.
    """

    def _init_pipeline(self, cfg):
        pipeline = super()._init_pipeline(cfg)
        pipeline.transforms = [strict_image_loading(t) for t in pipeline.transforms]
        return pipeline


def list_images(path: str) -> list[str]:
    """``[path]`` for a file; the images of a folder (by extension, sorted, not recursive).

    Raises:
        InputFileNotFoundError: a folder without images.
    """
    if not osp.isdir(path):
        return [path]
    images = sorted(osp.join(path, name) for name in os.listdir(path)
                    if name.lower().endswith(IMAGE_EXTENSIONS))
    if not images:
        raise InputFileNotFoundError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) in folder '
                                     f'{path}')
    return images


def demo_drawer(config: str, checkpoint: str,
                device: str = 'cpu') -> Callable[[str, str, float], int]:
    """The detector loaded once, as ``draw(image, out_file, score_thr) -> detections drawn``.

    ``checkpoint`` is a ``.pth`` file (loaded strictly into the config's model) or an
    ``.onnx`` file from ``tools/export_onnx.py`` (run by ONNX Runtime, with the config's
    test pipeline and visualizer; the config must describe the exported model).
    """
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
    """Detect objects in ``image`` and draw those scoring ``score_thr`` or more into ``out_file``.

    ``image`` may be a folder: each of its images (:func:`list_images`) is drawn into the
    folder ``out_file`` under its own name, with the model loaded once. An image that
    cannot be read or run (an :class:`~shufflenet_det.errors.InputError`) is skipped
    with a warning naming it, the others are drawn, and a count of the skipped ones
    ends the run; if none could be drawn, that is an error. The output is checked to be
    writable, and a single image to be readable, before the model is loaded.

    Returns:
        int: The images drawn.

    Raises:
        InputError: a missing or broken config, checkpoint or (single) image, an output
            that cannot be written (or an image file named as a folder's output), or a
            folder none of whose images could be drawn.
    """
    images, folder = list_images(image), osp.isdir(image)
    if folder and str(out_file).lower().endswith(IMAGE_EXTENSIONS):
        raise ConfigError(f'{image} is a folder: its images are drawn into a folder, '
                          f'--out-dir DIR, not into the image file {out_file}')
    check_writable(out_file, '--out-dir' if folder else '--out-file', directory=folder)
    if not folder:
        read_image(image)
    draw = demo_drawer(config, checkpoint, device)
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
