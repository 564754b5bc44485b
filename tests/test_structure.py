"""The package's shape, checked: imports point down without cycles, and the tools parse
arguments and call the package.

    .venv/bin/python -m pytest tests/test_structure.py -v
"""
import ast
from pathlib import Path

import pytest

from .helpers import REPO

PACKAGE = REPO / 'shufflenet_det'
# Lowest first. A module may import its own subpackage and any lower layer, nothing else,
# not even inside a function (style.md: models at the bottom, tools on top).
LAYERS = [
    {'errors', 'versions'},
    {'fileio', 'images', 'config'},
    {'models'},
    {'checkpoint'},
    {'datasets'},
    {'engine'},
    {'deploy'},
    {'evaluation'},
    {'analysis', 'visualization'},
    {'apis'},
]
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob('*.py'))}


def imported_modules(path: Path, modules: dict[str, Path]) -> set[str]:
    """shufflenet_det modules that ``path`` imports anywhere in its body (relative or not)."""
    name = module_name(path)
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith('shufflenet_det')}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')[:len(package.split('.')) - node.level + 1]
                target = '.'.join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith('shufflenet_det'):
                target = node.module
            else:
                continue
            found.add(target)
            # ``from . import datasets`` names a submodule.
            found |= {f'{target}.{a.name}' for a in node.names if f'{target}.{a.name}' in modules}
    return {m for m in found if m in modules}


def layer(module: str) -> tuple[str, int]:
    part = module.split('.')[1] if '.' in module else ''
    return part, LAYER_OF.get(part, len(LAYERS))


def test_every_subpackage_has_a_layer():
    parts = {p.relative_to(PACKAGE).parts[0].removesuffix('.py') for p in PACKAGE.glob('*')
             if p.name not in ('__init__.py', '__pycache__')}
    assert parts <= set(LAYER_OF), f'give these a layer: {sorted(parts - set(LAYER_OF))}'


def test_imports_point_down():
    modules = package_modules()
    upward = []
    for name, path in modules.items():
        if name == 'shufflenet_det':
            continue  # the package itself imports everything, to register it
        own, own_layer = layer(name)
        for target in imported_modules(path, modules):
            part, target_layer = layer(target)
            if part != own and target_layer >= own_layer:
                upward.append(f'{name} imports {target}')
    assert not upward, 'imports that do not point down:\n' + '\n'.join(sorted(upward))


def test_models_import_nothing_from_the_layers_above():
    modules = package_modules()
    for name, path in modules.items():
        if name.startswith('shufflenet_det.models'):
            outside = {t for t in imported_modules(path, modules)
                       if not t.startswith(('shufflenet_det.models', 'shufflenet_det.errors'))}
            assert not outside, f'{name} imports {sorted(outside)}'


def test_the_import_graph_has_no_cycle():
    modules = package_modules()
    graph = {name: imported_modules(path, modules) - {name} for name, path in modules.items()}
    state, stack = {}, []

    def visit(node):
        state[node] = 'open'
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 'open':
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail('import cycle: ' + ' -> '.join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 'done'

    for node in sorted(graph):
        if node not in state:
            visit(node)


@pytest.mark.parametrize('tool', sorted(p.name for p in (REPO / 'tools').glob('*.py')))
def test_tools_parse_arguments_and_call_the_package(tool):
    tree = ast.parse((REPO / 'tools' / tool).read_text())
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert set(functions) <= {'parse_args', 'main'}, sorted(functions)
    assert not [n for n in tree.body if isinstance(n, ast.ClassDef)]
    assert 'run_tool' in ast.unparse(functions['main'])
