"""ShuffleNet V1 (Zhang et al., 2017) for MMDetection.

``import shufflenet_det``, or ``custom_imports = dict(imports=['shufflenet_det'])``
in a config, registers everything this package provides.
"""
__version__ = '0.1.0'

from . import models  # noqa: E402,F401  (registers the modules)
