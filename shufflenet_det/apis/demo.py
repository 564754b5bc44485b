"""``tools/run_demo.py``: generate the shapes dataset, train, evaluate, draw detections."""
import json
import os.path as osp
import time
from collections import Counter
from typing import Callable

from mmengine.config import Config
from mmengine.runner import Runner

from ..checkpoint import load_detector
from ..config import load_config
from ..datasets import check_dataset_paths
from ..datasets.synthetic_shapes import generate_shapes_dataset
from ..engine.work_dir_lock import lock_work_dir
from ..errors import CheckFailedError
from ..fileio import atomic_open
from ..visualization import draw_detections


def ensure_demo_data(cfg: Config, num_train: int, num_val: int,
                     progress: Callable[[str], None] = print) -> bool:
    """Generate the dataset the config reads if any of its files is missing; returns whether
    it did."""
    try:
        check_dataset_paths(cfg)
        return False
    except FileNotFoundError:
        progress(f'generating the shapes dataset in {cfg.data_root} '
                 f'({num_train} training and {num_val} held-out images)')
        generate_shapes_dataset(cfg.data_root, num_train, num_val, progress=progress)
        check_dataset_paths(cfg)
        return True


def run_demo(config: str, work_dir: str, num_train: int = 400, num_val: int = 60,
             progress: Callable[[str], None] = print) -> dict:
    """Train and evaluate the demo detector in ``work_dir`` (locked first, one run per work
    dir), draw it on the held-out image with the most objects, and return a summary (also
    written to ``WORK_DIR/summary.json``)."""
    with lock_work_dir(work_dir):
        start = time.perf_counter()
        cfg = load_config(config)
        cfg.work_dir = work_dir
        generated = ensure_demo_data(cfg, num_train, num_val, progress)
        data_time = time.perf_counter() - start
        runner = Runner.from_cfg(cfg)
        runner.train()
        train_time = time.perf_counter() - start - data_time
        metrics = {k[len('val/'):]: float(v.current())
                   for k, v in runner.message_hub.log_scalars.items()
                   if k.startswith('val/coco/')}

        dataset = cfg.val_dataloader.dataset
        with open(osp.join(dataset.data_root, dataset.ann_file)) as f:
            coco = json.load(f)
        counts = Counter(a['image_id'] for a in coco['annotations'])
        densest = max(coco['images'], key=lambda im: (counts[im['id']], -im['id']))
        image = osp.join(dataset.data_root, dataset.data_prefix.img, densest['file_name'])
        checkpoint = osp.join(work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
        drawn = osp.join(work_dir, 'demo_detections.png')
        n = draw_detections(load_detector(config, checkpoint), image, drawn, score_thr=0.5)
        summary = dict(
            bbox_mAP=metrics.get('coco/bbox_mAP'), metrics=metrics,
            epochs=cfg.train_cfg.max_epochs, data_generated=generated,
            data_seconds=round(data_time, 1), train_and_eval_seconds=round(train_time, 1),
            total_seconds=round(time.perf_counter() - start, 1),
            detections_image=drawn, detections_drawn=n, checkpoint=checkpoint)
        with atomic_open(osp.join(work_dir, 'summary.json')) as f:
            json.dump(summary, f, indent=2)
    return summary


def demo_end_to_end(config: str, work_dir: str, num_train: int = 400, num_val: int = 60,
                    min_map: float = 0.30, progress: Callable[[str], None] = print) -> dict:
    """:func:`run_demo`, its summary printed; a CheckFailedError below ``min_map`` bbox mAP."""
    s = run_demo(config, work_dir, num_train, num_val, progress)
    progress(f'bbox mAP@[.5:.95] {s["bbox_mAP"]:.3f} (AP50 '
             f'{s["metrics"].get("coco/bbox_mAP_50", float("nan")):.3f}) after {s["epochs"]} '
             f'epochs; {s["total_seconds"] / 60:.1f} min in all ({s["data_seconds"]:.0f} s '
             f'data, {s["train_and_eval_seconds"]:.0f} s training and evaluation)')
    progress(f'{s["detections_drawn"]} detections drawn to {s["detections_image"]}')
    if s['bbox_mAP'] is None or s['bbox_mAP'] < min_map:
        raise CheckFailedError(f'bbox mAP {s["bbox_mAP"]} is below the bar of {min_map}')
    return s
