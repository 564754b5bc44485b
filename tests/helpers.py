"""Helpers shared by the tests."""
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


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
