"""Helpers shared by the tests."""
import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Optional

REPO = Path(__file__).resolve().parents[1]


def mmengine_console_to_stdout(only_closed: bool = False) -> None:
    """Point MMEngine's console handlers at the current ``sys.stdout`` (all of them, or
    those whose stream is closed). An MMLogger outlives a test and keeps the stdout of
    when it was made: under pytest, an earlier test's capture, closed once it ended. Not
    with ``setStream()``, which flushes the closed stream first."""
    import logging

    from mmengine.logging import MMLogger
    for logger in list(MMLogger._instance_dict.values()):
        for handler in logger.handlers:
            if type(handler) is logging.StreamHandler and (
                    not only_closed or getattr(handler.stream, 'closed', False)):
                handler.stream = sys.stdout


def load_tool(name: str) -> ModuleType:
    """Import ``tools/NAME.py`` under the name ``shufflenet_det_tools.NAME``.

    The tools are scripts, not a package; importing them by path keeps ``tools/`` off
    ``sys.path``, where ``tools/test.py`` would shadow the standard library's ``test``.
    """
    module_name = f'shufflenet_det_tools.{name}'
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, REPO / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


# A safety net against a hung tool, not a performance gate: far above what any tool run in
# the suite takes even on a loaded 2-core machine, so only a real hang reaches it.
TOOL_TIMEOUT_S = 3600


def run(*args: str, check: bool = True, env: Optional[dict] = None,
        timeout: float = TOOL_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` in the repository root, as a user runs the tools.

    Args:
        args: The interpreter's arguments: a tool's path and its arguments, or ``-c CODE``.
        check (bool): Raise ``AssertionError`` with the output's tail on a non-zero exit.
        env (dict, optional): Extra environment variables.
        timeout (float): Seconds before a hung run is killed (:data:`TOOL_TIMEOUT_S`).
    """
    full_env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='2', **(env or {}))
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args[0]} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n'
                             f'{proc.stderr[-3000:]}')
    return proc


DEMO_CONFIG = str(REPO / 'configs/faster_rcnn_shufflenet_demo.py')
# Single-process data loading: worker processes only add start-up time to these small runs.
LOADERS = [f'{split}_dataloader.{key}' for split in ('train', 'val', 'test')
           for key in ('num_workers=0', 'persistent_workers=False')]


@dataclass(frozen=True)
class TrainedDetector:
    """A detector trained through ``tools/train.py`` on generated shapes.

    Attributes:
        config (str): The config file the run trained.
        checkpoint (Path): The final checkpoint.
        work_dir (Path): The run's work dir (checkpoints, ``last_checkpoint``, logs).
        data_root (Path): The shapes dataset: ``train/``, ``val/``, ``annotations/``.
        num_val (int): Images in the held-out ``val`` split.
        max_epochs (int): Epochs trained; ``checkpoint`` is ``epoch_{max_epochs}.pth``.
        checkpoint_interval (int): Every this many epochs a checkpoint was kept.
    """
    config: str
    checkpoint: Path
    work_dir: Path
    data_root: Path
    num_val: int
    max_epochs: int
    checkpoint_interval: int


def shapes_training_options(max_epochs: int = 8, checkpoint_interval: int = 4) -> list[str]:
    """``--cfg-options`` of a short detector training on generated shapes.

    The schedule suits 96 training images in batches of 8 (12 iterations an epoch): a
    20-iteration warm-up, a tenfold lr drop before the last epoch, one evaluation at the
    end, a checkpoint kept every ``checkpoint_interval`` epochs.
    """
    return [f'train_cfg.max_epochs={max_epochs}', f'train_cfg.val_interval={max_epochs}',
            f'default_hooks.checkpoint.interval={checkpoint_interval}',
            'default_hooks.checkpoint.max_keep_ckpts=-1', 'param_scheduler.0.end=20',
            f'param_scheduler.1.milestones=[{max_epochs - 1}]', *LOADERS]


def train_shapes_detector(config: str, work_dir: Path, data_root: Path, num_val: int,
                          max_epochs: int = 8, checkpoint_interval: int = 4) -> TrainedDetector:
    """Train ``config`` on the shapes at ``data_root`` through ``tools/train.py``, with
    :func:`shapes_training_options`."""
    run('tools/train.py', config, '--work-dir', str(work_dir), '--data-root', str(data_root),
        '--cfg-options', *shapes_training_options(max_epochs, checkpoint_interval))
    return TrainedDetector(config, work_dir / f'epoch_{max_epochs}.pth', work_dir, data_root,
                           num_val, max_epochs, checkpoint_interval)


@dataclass(frozen=True)
class ExportedDetector:
    """The shared demo detector exported by ``tools/export_onnx.py --int8``.

    Attributes:
        onnx (Path): The float32 detector.
        int8 (Path): Its int8 copy, calibrated on 8 training images.
        log (str): What the export printed (its checks).
    """
    onnx: Path
    int8: Path
    log: str


@dataclass(frozen=True)
class TestedDetector:
    """What ``tools/test.py --out --show-dir`` wrote for the shared demo detector.

    Attributes:
        work_dir (Path): The test run's work dir, with ``metrics.json``.
        predictions (Path): The ``--out`` file: one prediction per val image.
        drawings (Path): The ``--show-dir`` folder: one drawn image per val image.
    """
    work_dir: Path
    predictions: Path
    drawings: Path


def read_test_results(work_dir: Path, predictions_file: Path) -> tuple[dict, list]:
    """What a ``tools/test.py --work-dir WORK_DIR --out FILE`` run wrote: the metrics of
    ``metrics.json`` and the predictions of the ``--out`` pickle."""
    import json
    import pickle
    with open(predictions_file, 'rb') as f:
        predictions = pickle.load(f)
    return json.loads((work_dir / 'metrics.json').read_text()), predictions


def save_random_demo_detector(directory: Path) -> str:
    """The demo detector with random weights, saved as a plain checkpoint (no digest) in
    ``directory``: for tests whose point is what happens before or around the weights."""
    import torch
    from mmdet.registry import MODELS

    from shufflenet_det.config import load_config
    path = directory / 'random.pth'
    torch.save({'state_dict': MODELS.build(load_config(DEMO_CONFIG).model).state_dict(),
                'meta': {}}, path)
    return str(path)
