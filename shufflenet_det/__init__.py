"""ShuffleNet V1 (Zhang et al., 2017) for MMDetection.

``import shufflenet_det``, or ``custom_imports = dict(imports=['shufflenet_det'])``
in a config, registers everything this package provides, each under a name of its own,
and does nothing else: it replaces no MMDetection or MMEngine registration, patches no
other package's class and changes no process-wide setting (umask, torch's safe globals,
warnings, logging). What the project's tools need (safe loading of MMEngine's
checkpoints, strict image loading) they set up for themselves; a script of your own can
call :func:`shufflenet_det.checkpoint.allow_mmengine_checkpoints` or use
:class:`shufflenet_det.apis.StrictDetInferencer` (docs/faq.md). It stops at once,
naming the versions, on a torch, torchvision or NumPy older than the classic
MMDetection 3.3 stack.
"""
__version__ = '0.1.0'

from .versions import check_version_floors  # noqa: E402

check_version_floors()

from . import datasets, engine, evaluation, models  # noqa: E402,F401  (register the modules)
