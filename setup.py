"""Install shufflenet_det into an existing MMDetection 3.3 environment.

    pip install --no-deps -e .            # the plugin alone, on the torch you have
    pip install -e .[deploy]              # with ONNX export and ONNX Runtime

torch, torchvision and NumPy are not requirements here, as in MMDetection itself: pip
must never replace a user's torch (or move NumPy 1.x to 2.x under a torch built for 1.x).
Their floors, the classic stack that CI tests (requirements/classic.txt), are checked
when the package is imported (shufflenet_det/versions.py).
"""
import re
from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
version = re.search(r"__version__ = '([^']+)'",
                    (here / 'shufflenet_det' / '__init__.py').read_text()).group(1)

setup(
    name='shufflenet_det',
    version=version,
    description='ShuffleNet V1 (Zhang et al., 2017) backbone, detectors and tools for MMDetection',
    long_description=(here / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    python_requires='>=3.10',
    packages=find_packages(include=['shufflenet_det', 'shufflenet_det.*']),
    install_requires=['mmengine>=0.10.7,<1.0', 'mmcv>=2.1.0,<2.2.0', 'mmdet>=3.3.0,<3.4',
                      'pycocotools>=2.0.7'],
    extras_require={'deploy': ['onnx>=1.17', 'onnxruntime>=1.23'], 'tests': ['pytest>=8']},
    license='Apache-2.0',
)
