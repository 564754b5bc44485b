"""Drawing a detector's predictions on one image."""
import mmcv
from mmdet.apis import inference_detector
from mmdet.registry import VISUALIZERS

from ..datasets.coco import read_image
from ..fileio import atomic_path


def draw_detections(model, image_path: str, out_file: str, score_thr: float = 0.3) -> int:
    """Run ``model`` on ``image_path``, draw detections above ``score_thr`` into ``out_file``.

    Returns:
        int: the number of detections drawn.
    """
    image = read_image(image_path)
    result = inference_detector(model, image)
    visualizer = VISUALIZERS.build(model.cfg.visualizer)
    visualizer.dataset_meta = model.dataset_meta
    with atomic_path(out_file) as tmp:
        visualizer.add_datasample('detections', mmcv.bgr2rgb(image), data_sample=result,
                                  draw_gt=False, show=False, pred_score_thr=score_thr,
                                  out_file=tmp)
    return int((result.pred_instances.scores >= score_thr).sum())
