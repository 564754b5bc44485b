"""Drawing a detector's predictions on one image."""
import os
import os.path as osp
import tempfile

import mmcv
from mmdet.apis import inference_detector
from mmdet.registry import VISUALIZERS


def draw_detections(model, image_path: str, out_file: str, score_thr: float = 0.3) -> int:
    """Run ``model`` on ``image_path``, draw detections above ``score_thr`` into ``out_file``.

    Returns:
        int: the number of detections drawn.
    """
    result = inference_detector(model, image_path)
    visualizer = VISUALIZERS.build(model.cfg.visualizer)
    visualizer.dataset_meta = model.dataset_meta
    image = mmcv.imread(image_path, channel_order='rgb')
    out_dir = osp.dirname(osp.abspath(out_file))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=osp.splitext(out_file)[1] or '.png', dir=out_dir)
    os.close(fd)
    try:
        visualizer.add_datasample('detections', image, data_sample=result, draw_gt=False,
                                  show=False, pred_score_thr=score_thr, out_file=tmp)
        os.replace(tmp, out_file)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return int((result.pred_instances.scores >= score_thr).sum())
