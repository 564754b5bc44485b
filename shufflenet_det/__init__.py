"""ShuffleNet V1 (Zhang et al., 2017) for MMDetection.

``import shufflenet_det``, or ``custom_imports = dict(imports=['shufflenet_det'])``
in a config, registers everything this package provides and lets safe loading read
MMEngine's checkpoints (for ``--resume``). It stops at once, naming the versions, on a
torch, torchvision or NumPy older than the classic MMDetection 3.3 stack.
"""
__version__ = '0.1.0'

from .stack import check_stack  # noqa: E402

check_stack()

from . import datasets, engine, evaluation, models  # noqa: E402,F401  (register the modules)
from .checkpoint import allow_mmengine_checkpoints  # noqa: E402

allow_mmengine_checkpoints()
