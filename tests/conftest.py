import logging

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope

import shufflenet_det  # noqa: F401  (registers the models)
from shufflenet_det.datasets.synthetic_shapes import generate_shapes_dataset

from .helpers import (DEMO_CONFIG, LOADERS, ExportedDetector, TestedDetector,
                      TrainedDetector, mmengine_console_to_stdout, run, train_shapes_detector)


# What `make test-classic` runs on the classic stack (torch 2.1.2, NumPy 1.26.4): import and
# floors, what import leaves unchanged, safe loading, strict pretrained loading with every
# check, the converter and the real official files (where SHUFFLENET_DET_OFFICIAL_WEIGHTS
# names them), every config, a train/kill/resume run, tools/test.py with COCO
# metrics, and deploy.
CLASSIC_SUBSET = (
    'tests/test_versions.py',
    'tests/test_import_manners.py',
    'tests/checkpoint/test_safe_loading.py',
    'tests/checkpoint/test_digest.py',
    'tests/checkpoint/test_pretrained.py',
    'tests/checkpoint/test_pretrained_files.py',
    'tests/checkpoint/test_detector_init.py',
    'tests/checkpoint/test_megvii.py',
    'tests/checkpoint/test_official_files.py',
    'tests/engine/test_checkpointing.py',
    'tests/configs/',
    'tests/tools/test_resume_and_distributed.py::test_killed_and_resumed_run_ends_with_the_',
    'tests/tools/test_resume_and_distributed.py::test_resume_refuses_a_checkpoint_with_a_pickled',
    'tests/tools/test_resume_and_distributed.py::test_resume_names_a_truncated_checkpoint',
    'tests/deploy/test_onnx.py',
    'tests/deploy/test_detector_onnx.py::test_onnxruntime_equals_mmdet_predict_at_two_sizes',
    'tests/deploy/test_detector_onnx.py::test_graph_is_standard_onnx',
)


def pytest_collection_modifyitems(config, items):
    """Mark the classic subset; skip the tests marked ``gpu`` where torch sees no GPU."""
    for item in items:
        if item.nodeid.startswith(CLASSIC_SUBSET):
            item.add_marker(pytest.mark.classic)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs a CUDA GPU (torch.cuda.is_available() is False)')
    for item in items:
        if item.get_closest_marker('gpu'):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _mmdet_scope_and_seed():
    """Build everything in mmdet's registry scope, from a fixed seed."""
    torch.manual_seed(0)
    name = f'test-{id(object())}'
    DefaultScope.get_instance(name, scope_name='mmdet')
    yield
    DefaultScope._instance_dict.pop(name, None)


@pytest.fixture(autouse=True)
def _torch_threads():
    """Restore torch's thread count after each test: the benchmarks set it (``--threads 1``)
    in this process, and every later test would otherwise run on one core."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _mmengine_console_to_this_test():
    """Point MMEngine's console handlers whose stream is closed at this test's stdout: a
    later ``print_log`` would print ``--- Logging error ---`` into the captured stderr."""
    mmengine_console_to_stdout(only_closed=True)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    @property
    def text(self):
        return '\n'.join(f'{r.levelname} {r.getMessage()}' for r in self.records)


@pytest.fixture
def mmlog():
    """Records of MMEngine's current logger (which does not propagate to ``logging``)."""
    logger = MMLogger.get_current_instance()
    handler = _Records()
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.fixture(scope='session')
def trained_demo_detector(tmp_path_factory) -> TrainedDetector:
    """The demo detector, trained once per test run and shared by every module that needs one.

    ``configs/faster_rcnn_shufflenet_demo.py`` trained through ``tools/train.py`` for 8
    epochs on 96 generated 128 px images (``val``: 16), with checkpoints ``epoch_4.pth``
    and ``epoch_8.pth`` and one evaluation at the end. No test asserts how well it trained:
    that differs between CPUs (float rounding, oneDNN's code paths), so tests compare what it
    outputs on two paths (PyTorch and ONNX Runtime, one process and two) instead.

    Shared: treat everything under ``work_dir`` and ``data_root`` as read-only, and copy
    what a test changes into its own ``tmp_path``.
    """
    data_root = tmp_path_factory.mktemp('demo_shapes')
    generate_shapes_dataset(str(data_root), num_train=96, num_val=16, image_size=128)
    return train_shapes_detector(DEMO_CONFIG, tmp_path_factory.mktemp('demo_detector'),
                                 data_root, num_val=16)


@pytest.fixture(scope='session')
def exported_demo_detector(trained_demo_detector, tmp_path_factory) -> ExportedDetector:
    """The shared demo detector as ONNX files, exported once per test run (read-only)."""
    trained = trained_demo_detector
    out = tmp_path_factory.mktemp('demo_onnx') / 'demo.onnx'
    proc = run('tools/export_onnx.py', trained.config, str(trained.checkpoint), '--out', str(out),
               '--int8', '--calib-dir', str(trained.data_root / 'train'), '--calib-num', '8')
    return ExportedDetector(out, out.with_name('demo_int8.onnx'), proc.stdout)


@pytest.fixture(scope='session')
def tested_demo_detector(trained_demo_detector, tmp_path_factory) -> TestedDetector:
    """``tools/test.py`` on the shared demo detector, run once per test run (read-only):
    its metrics, predictions (``--out``) and drawings (``--show-dir``)."""
    trained = trained_demo_detector
    out = tmp_path_factory.mktemp('demo_test')
    predictions, drawings = out / 'results.pkl', out / 'show'
    run('tools/test.py', trained.config, str(trained.checkpoint), '--work-dir', str(out),
        '--data-root', str(trained.data_root), '--out', str(predictions), '--show-dir',
        str(drawings), '--cfg-options', *LOADERS)
    return TestedDetector(out, predictions, drawings)
