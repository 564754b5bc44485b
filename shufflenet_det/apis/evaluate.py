"""``tools/test.py``: evaluate a checkpoint (``.pth``, or ``.onnx`` in ONNX Runtime) on a
config's test split. The metrics go to ``WORK_DIR/metrics.json`` with ``count/images`` and
``count/detections``; a detector that finds nothing gets every COCO AP as 0 with a warning,
instead of MMDetection's empty result."""
import json
import os.path as osp
from contextlib import nullcontext
from typing import Callable, Optional

from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..checkpoint import load_checkpoint_file, load_model_checkpoint
from ..datasets import check_dataset_paths
from ..engine import setup_cpu_distributed
from ..evaluation import DetectionCount, coco_metric_names
from ..errors import ConfigError
from ..fileio import atomic_open, atomic_path, check_writable
from .runner_config import prepare_config


def _finish(metrics: dict, cfg, out: Optional[str], progress: Callable[[str], None]) -> dict:
    """Fill in zero AP where CocoMetric had nothing to score, and write ``metrics.json``."""
    metrics = {k: float(v) if isinstance(v, (int, float)) else v for k, v in metrics.items()}
    names = coco_metric_names(cfg.test_evaluator)
    if names and not any(n in metrics for n in names):
        images = int(metrics.get('count/images', 0))
        boxes = int(metrics.get('count/detections', 0))
        print_log(f'the model made {boxes} detections on {images} test images, so COCO '
                  'evaluation had nothing to score: every AP is reported as 0.0',
                  logger='current', level=30)
        progress(f'warning: {boxes} detections on {images} images; every AP is 0.0')
        metrics.update({n: 0.0 for n in names})
    if is_main_process():
        if out:
            progress(f'predictions written to {out}')
        path = osp.join(cfg.work_dir, 'metrics.json')
        with atomic_open(path) as f:
            json.dump(metrics, f, indent=2)
        progress(f'metrics written to {path}')
    return metrics


def evaluate(config: str, checkpoint: str, work_dir: Optional[str] = None,
             out: Optional[str] = None, show_dir: Optional[str] = None,
             data_root: Optional[str] = None, cfg_options: Optional[dict] = None,
             launcher: str = 'none', progress: Callable[[str], None] = print) -> dict:
    """Evaluate ``checkpoint``, loaded strictly; ``out`` receives the raw predictions.

    Raises:
        InputError: a missing or broken config, checkpoint or dataset path, an output
            that cannot be written, or a checkpoint that does not fit the model.
    """
    from mmdet.evaluation import DumpDetResults
    from mmdet.models.detectors import BaseDetector
    from mmengine.evaluator import DumpResults

    check_writable(out, '--out')
    check_writable(show_dir, '--show-dir', directory=True)
    if str(checkpoint).endswith('.onnx'):
        if show_dir or launcher != 'none':
            raise ConfigError('an ONNX file is evaluated in one process and without '
                              '--show-dir; leave out --show-dir and --launcher')
        return evaluate_onnx(config, checkpoint, work_dir, out, data_root, cfg_options,
                             progress=progress)
    ckpt = load_checkpoint_file(checkpoint)  # a bad file fails here, with its name
    cfg = prepare_config(config, work_dir, cfg_options, data_root, launcher)
    setup_cpu_distributed(cfg)
    cfg.load_from = None  # loaded strictly below, where the Runner's load is not
    if show_dir:  # absolute, or the images land under work_dir/timestamp/
        cfg.default_hooks.visualization.draw = True
        cfg.default_hooks.visualization.test_out_dir = osp.abspath(show_dir)
    check_dataset_paths(cfg, splits=('test_dataloader', 'Metric'))
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    model = getattr(runner.model, 'module', runner.model)
    load_model_checkpoint(model, ckpt, checkpoint)
    runner.call_hook('after_load_checkpoint', checkpoint=ckpt)
    is_detector = isinstance(model, BaseDetector)
    if is_detector:
        runner.test_evaluator.metrics.append(DetectionCount())
    writes_out = bool(out) and is_main_process()  # MMEngine gathers predictions there
    with atomic_path(out) if writes_out else nullcontext(out) as partial:
        if out:
            dump = DumpDetResults if is_detector else DumpResults
            runner.test_evaluator.metrics.append(dump(out_file_path=partial))
        metrics = runner.test()
    return _finish(metrics, runner.cfg, out, progress)


def evaluate_onnx(config: str, onnx_file: str, work_dir: Optional[str] = None,
                  out: Optional[str] = None, data_root: Optional[str] = None,
                  cfg_options: Optional[dict] = None, threads: Optional[int] = None,
                  progress: Callable[[str], None] = print) -> dict:
    """Evaluate an exported detector in ONNX Runtime with the config's test data and metric
    (:class:`~shufflenet_det.deploy.ONNXRuntimeDetector` scales boxes back to the image)."""
    from mmdet.evaluation import DumpDetResults
    from mmengine.evaluator import Evaluator

    from ..deploy import ONNXRuntimeDetector
    cfg = prepare_config(config, work_dir, cfg_options, data_root)
    detector = ONNXRuntimeDetector(onnx_file, threads=threads, config=cfg)  # same model?
    check_dataset_paths(cfg, splits=('test_dataloader', 'Metric'))
    loader = Runner.build_dataloader(cfg.test_dataloader)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.metrics.append(DetectionCount())
    with atomic_path(out) if out else nullcontext(out) as partial:
        if out:
            evaluator.metrics.append(DumpDetResults(out_file_path=partial))
        evaluator.dataset_meta = loader.dataset.metainfo
        for i, batch in enumerate(loader):
            evaluator.process(detector.predict_packed(batch['inputs'], batch['data_samples']),
                              batch)
            if (i + 1) % 50 == 0 or i + 1 == len(loader):
                progress(f'ONNX Runtime: {i + 1}/{len(loader)} batches')
        metrics = evaluator.evaluate(len(loader.dataset))
    return _finish(metrics, cfg, out, progress)
