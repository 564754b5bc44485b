"""``tools/test.py``: evaluate a checkpoint on a config's test split, and report it in full.

The metrics go to ``WORK_DIR/metrics.json`` beside ``count/images`` and
``count/detections``. A detector that finds nothing gets every COCO AP reported as
0 with a warning, instead of MMDetection's empty result.
"""
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


def _is_detector(model) -> bool:
    from mmdet.models.detectors import BaseDetector
    return isinstance(getattr(model, 'module', model), BaseDetector)


def _dump_metric(model, out_file: str):
    from mmdet.evaluation import DumpDetResults
    from mmengine.evaluator import DumpResults
    return (DumpDetResults if _is_detector(model) else DumpResults)(out_file_path=out_file)


def complete_metrics(metrics: dict, evaluator_cfg, progress: Callable[[str], None]) -> dict:
    """``metrics`` as plain numbers, with zero AP filled in where CocoMetric reported nothing."""
    metrics = {k: float(v) if isinstance(v, (int, float)) else v for k, v in metrics.items()}
    names = coco_metric_names(evaluator_cfg)
    if names and not any(n in metrics for n in names):
        images, boxes = int(metrics.get('count/images', 0)), int(
            metrics.get('count/detections', 0))
        print_log(f'the model made {boxes} detections on {images} test images, so COCO '
                  'evaluation had nothing to score: every AP is reported as 0.0',
                  logger='current', level=30)
        progress(f'warning: {boxes} detections on {images} images; every AP is 0.0')
        metrics.update({n: 0.0 for n in names})
    return metrics


def build_test_runner(config: str, checkpoint: str, work_dir: Optional[str] = None,
                      show_dir: Optional[str] = None, data_root: Optional[str] = None,
                      cfg_options: Optional[dict] = None, launcher: str = 'none') -> Runner:
    """The Runner of an evaluation, with the checkpoint loaded strictly (read once)."""
    ckpt = load_checkpoint_file(checkpoint)  # a bad file fails here, with its name
    cfg = prepare_config(config, work_dir, cfg_options, data_root, launcher)
    setup_cpu_distributed(cfg)
    cfg.load_from = None  # the Runner's own load is not strict; see below
    if show_dir:
        cfg.default_hooks.visualization.draw = True
        # An absolute path, so that the images land where asked rather than under
        # work_dir/timestamp/.
        cfg.default_hooks.visualization.test_out_dir = osp.abspath(show_dir)
    check_dataset_paths(cfg, splits=('test_dataloader', 'Metric'))
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    load_model_checkpoint(getattr(runner.model, 'module', runner.model), ckpt, checkpoint)
    runner.call_hook('after_load_checkpoint', checkpoint=ckpt)
    return runner


def _write_metrics(metrics: dict, work_dir: str, out: Optional[str],
                   progress: Callable[[str], None]) -> None:
    if out:
        progress(f'predictions written to {out}')
    path = osp.join(work_dir, 'metrics.json')
    with atomic_open(path) as f:
        json.dump(metrics, f, indent=2)
    progress(f'metrics written to {path}')


def evaluate(config: str, checkpoint: str, work_dir: Optional[str] = None,
             out: Optional[str] = None, show_dir: Optional[str] = None,
             data_root: Optional[str] = None, cfg_options: Optional[dict] = None,
             launcher: str = 'none', progress: Callable[[str], None] = print) -> dict:
    """Evaluate ``checkpoint``; writes ``metrics.json`` (and ``out``, the raw predictions).

    A ``.onnx`` checkpoint (``tools/export_onnx.py CONFIG CHECKPOINT``) is evaluated in
    ONNX Runtime by :func:`evaluate_onnx`. Every output appears complete or not at all:
    a run that fails leaves no predictions file and no metrics file.

    Returns:
        dict: The metrics written to ``WORK_DIR/metrics.json``.

    Raises:
        InputError: a missing or broken config, checkpoint or dataset path, an output
            that cannot be written, or a checkpoint that does not fit the model.
    """
    check_writable(out, '--out')
    check_writable(show_dir, '--show-dir', directory=True)
    if str(checkpoint).endswith('.onnx'):
        if show_dir or launcher != 'none':
            raise ConfigError('an ONNX file is evaluated in one process and without '
                              '--show-dir; leave out --show-dir and --launcher')
        return evaluate_onnx(config, checkpoint, work_dir, out, data_root, cfg_options,
                             progress=progress)
    runner = build_test_runner(config, checkpoint, work_dir, show_dir, data_root, cfg_options,
                               launcher)
    metrics_list = runner.test_evaluator.metrics
    if _is_detector(runner.model):
        metrics_list.append(DetectionCount())
    # Only the main process writes the predictions (MMEngine gathers them there).
    writes_out = bool(out) and is_main_process()
    with atomic_path(out) if writes_out else nullcontext(out) as partial:
        if out:
            metrics_list.append(_dump_metric(runner.model, partial))
        metrics = complete_metrics(runner.test(), runner.cfg.test_evaluator, progress)
    if is_main_process():
        _write_metrics(metrics, runner.cfg.work_dir, out, progress)
    return metrics


def evaluate_onnx(config: str, onnx_file: str, work_dir: Optional[str] = None,
                  out: Optional[str] = None, data_root: Optional[str] = None,
                  cfg_options: Optional[dict] = None, threads: Optional[int] = None,
                  progress: Callable[[str], None] = print) -> dict:
    """Evaluate an exported detector in ONNX Runtime with the config's test data and metric.

    The test dataloader's pipeline resizes each image as for the PyTorch model, the
    graph detects, and :class:`~shufflenet_det.deploy.ONNXRuntimeDetector` scales the
    boxes back to the original image, so the evaluator (``CocoMetric`` for the
    detection configs) sees what it sees from ``tools/test.py CONFIG CHECKPOINT.pth``.
    """
    from mmdet.evaluation import DumpDetResults
    from mmengine.evaluator import Evaluator

    from ..deploy import ONNXRuntimeDetector
    cfg = prepare_config(config, work_dir, cfg_options, data_root)
    # The file and the config first: they must describe the same model.
    detector = ONNXRuntimeDetector(onnx_file, threads=threads, config=cfg)
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
        metrics = complete_metrics(evaluator.evaluate(len(loader.dataset)), cfg.test_evaluator,
                                   progress)
    _write_metrics(metrics, cfg.work_dir, out, progress)
    return metrics
