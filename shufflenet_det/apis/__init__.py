"""What the tools in ``tools/`` call, one function each, and :class:`StrictDetInferencer`."""
from .cli import run_tool
from .demo import demo_end_to_end, run_demo
from .evaluate import evaluate
from .inference import StrictDetInferencer, demo
from .runner_config import check_neck_in_channels, prepare_config
from .train import build_train_runner, train

__all__ = ['StrictDetInferencer', 'build_train_runner', 'check_neck_in_channels', 'demo',
           'demo_end_to_end', 'evaluate', 'prepare_config', 'run_demo', 'run_tool', 'train']
