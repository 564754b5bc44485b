"""ShuffleNet V1 (Zhang et al., 2017) for MMDetection.

``import shufflenet_det`` (or ``custom_imports`` in a config) registers this package's
modules under names of their own and changes nothing else: no other package's class or
registration, no process-wide setting. The tools set up safe checkpoint loading and strict
image loading for themselves (docs/faq.md). It stops at once on a torch, torchvision or
NumPy older than the classic MMDetection 3.3 stack.
"""
__version__ = '0.1.0'

from .versions import check_version_floors  # noqa: E402

check_version_floors()

from . import datasets, engine, evaluation, models  # noqa: E402,F401  (register the modules)
