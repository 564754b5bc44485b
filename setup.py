"""Install shufflenet_det: ``pip install -e .`` (the stack itself comes from tools/setup_env.sh)."""
import re
from pathlib import Path

from setuptools import find_packages, setup

init = Path(__file__).parent / 'shufflenet_det' / '__init__.py'
version = re.search(r"__version__ = '([^']+)'", init.read_text()).group(1)

setup(
    name='shufflenet_det',
    version=version,
    description='ShuffleNet V1 (Zhang et al., 2017) backbone, detectors and tools for MMDetection',
    long_description=(Path(__file__).parent / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    python_requires='>=3.10',
    packages=find_packages(include=['shufflenet_det', 'shufflenet_det.*']),
    install_requires=['torch>=2.0', 'mmengine>=0.10,<1.0', 'mmcv>=2.0.0,<2.2.0', 'mmdet>=3.3,<3.4'],
    license='Apache-2.0',
)
