"""Drawing a detector's predictions on one image into a file."""
import hashlib
from typing import Optional

import mmcv
import numpy as np
from mmdet.registry import VISUALIZERS

from .datasets.image_loading import check_resize_keeps_pixels, keep_ratio_scales
from .fileio import atomic_path
from .images import read_image


def draw_result(image: np.ndarray, result, visualizer_cfg: dict, dataset_meta: Optional[dict],
                out_file: str, score_thr: float = 0.3) -> int:
    """Draw ``result`` (a ``DetDataSample``) on the BGR ``image`` into ``out_file``.

    Returns:
        int: the number of detections drawn (score >= ``score_thr``).
    """
    # A name of its own and no storage backends: MMEngine keeps one visualizer per name in
    # the process, and building a training run's name again would warn and return the run's.
    cfg = {k: v for k, v in dict(visualizer_cfg).items() if k not in ('name', 'vis_backends')}
    cfg['name'] = 'shufflenet_det_drawing_' + hashlib.sha1(
        repr(sorted(cfg.items())).encode()).hexdigest()[:12]
    kind = VISUALIZERS.get(cfg['type']) if isinstance(cfg['type'], str) else cfg['type']
    visualizer = kind.get_instance(cfg['name']) if kind.check_instance_created(cfg['name']) \
        else VISUALIZERS.build(cfg)
    visualizer.dataset_meta = dataset_meta
    with atomic_path(out_file) as tmp:
        visualizer.add_datasample('detections', mmcv.bgr2rgb(image), data_sample=result,
                                  draw_gt=False, show=False, pred_score_thr=score_thr,
                                  out_file=tmp)
    return int((result.pred_instances.scores >= score_thr).sum())


def draw_detections(model, image_path: str, out_file: str, score_thr: float = 0.3) -> int:
    """Run a PyTorch ``model`` on ``image_path`` and draw its detections into ``out_file``.

    Returns:
        int: the number of detections drawn.
    """
    from mmdet.apis import inference_detector
    from mmdet.utils import get_test_pipeline_cfg
    image = read_image(image_path)
    check_resize_keeps_pixels(image_path, image.shape[1], image.shape[0],
                              keep_ratio_scales(get_test_pipeline_cfg(model.cfg)))
    return draw_result(image, inference_detector(model, image), model.cfg.visualizer,
                       model.dataset_meta, out_file, score_thr)
