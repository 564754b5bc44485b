"""``tools/demo.py``: a detector (PyTorch or ONNX) run on one image and drawn."""
from typing import Callable

from ..checkpoint import load_detector
from ..config import load_config
from ..datasets import read_image
from ..deploy import ONNXRuntimeDetector
from ..visualization import draw_detections, draw_result


def demo(image: str, config: str, checkpoint: str, out_file: str, score_thr: float = 0.3,
         device: str = 'cpu', progress: Callable[[str], None] = print) -> None:
    """Detect objects in ``image`` and draw those scoring ``score_thr`` or more into ``out_file``.

    ``checkpoint`` is a ``.pth`` file (loaded strictly into the config's model) or an
    ``.onnx`` file from ``tools/export_onnx.py`` (run by ONNX Runtime, with the config's
    test pipeline and visualizer).
    """
    if str(checkpoint).endswith('.onnx'):
        cfg = load_config(config)
        detector = ONNXRuntimeDetector(checkpoint, cfg.test_dataloader.dataset.pipeline)
        pixels = read_image(image)
        classes = detector.classes or cfg.get('metainfo', {}).get('classes')
        drawn = draw_result(pixels, detector(pixels), cfg.visualizer,
                            dict(classes=classes) if classes else None, out_file, score_thr)
    else:
        drawn = draw_detections(load_detector(config, checkpoint, device), image, out_file,
                                score_thr)
    progress(f'{drawn} detections with score >= {score_thr} drawn to {out_file}')
