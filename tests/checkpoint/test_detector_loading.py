"""A trained detector loaded for inference: strictly, with its own class names, and quietly."""
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
from mmdet.registry import MODELS, VISUALIZERS
from mmengine.config import Config

from shufflenet_det.checkpoint import load_detector
from shufflenet_det.datasets.synthetic_shapes import CLASSES
from shufflenet_det.visualization import draw_detections

REPO = Path(__file__).resolve().parents[2]
DEMO = str(REPO / 'configs/faster_rcnn_shufflenet_demo.py')


def _demo_checkpoint(path, meta):
    model = MODELS.build(Config.fromfile(DEMO).model)
    torch.save(dict(state_dict=model.state_dict(), meta=meta), path)


def test_classes_come_from_the_checkpoint_or_the_config_without_mmdet_warnings(tmp_path):
    recorded, bare = tmp_path / 'recorded.pth', tmp_path / 'bare.pth'
    _demo_checkpoint(recorded, dict(dataset_meta=dict(classes=('a', 'b', 'c', 'd', 'e'))))
    _demo_checkpoint(bare, {})
    image = tmp_path / 'image.png'
    cv2.imwrite(str(image), np.full((64, 64, 3), 128, np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # (this process may hold one already)
        VISUALIZERS.build(Config.fromfile(DEMO).visualizer)  # as a Runner builds it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        model = load_detector(DEMO, str(recorded))
        assert model.dataset_meta['classes'] == ('a', 'b', 'c', 'd', 'e')
        # mmdet's init_detector would warn "checkpoint is None, use COCO classes by default".
        assert not [w for w in caught if 'COCO classes' in str(w.message)]
        # Without a record, the config's classes: not COCO's 80, as init_detector would say.
        model = load_detector(DEMO, str(bare))
        assert tuple(model.dataset_meta['classes']) == tuple(CLASSES)
        assert model.dataset_meta['palette'] and model.cfg.filename == DEMO
        assert not model.training
        for _ in range(2):  # next to a training run's visualizer of the config's name
            draw_detections(model, str(image), str(tmp_path / 'drawn.png'), score_thr=0.0)
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if 'COCO classes' in m or 'palette' in m
                or 'has been created' in m or 'save_dir' in m], messages
    assert (tmp_path / 'drawn.png').is_file()
