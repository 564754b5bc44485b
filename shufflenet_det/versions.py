"""The oldest torch, torchvision and NumPy the package runs on, checked at import.

They are not install requirements (``setup.py``): pip would otherwise replace a user's
torch, or move NumPy 1.x to 2.x under a torch built for 1.x. These floors are the
classic MMDetection 3.3 stack that CI tests (``requirements/classic.txt``: torch 2.1.2,
torchvision 0.16.2, NumPy 1.26.4); the newest tested is the pinned stack
(``requirements/stack.txt``).
"""
import re
from importlib.metadata import PackageNotFoundError, version

MINIMUM_VERSIONS = {'torch': (2, 1), 'torchvision': (0, 16), 'numpy': (1, 26)}


def release(text: str) -> tuple[int, ...]:
    """``'2.1.2+cu121'`` -> ``(2, 1, 2)``."""
    return tuple(int(part) for part in re.findall(r'\d+', text.split('+')[0])[:3])


def check_version_floors(minimums=MINIMUM_VERSIONS, installed=version) -> None:
    """Raise ImportError naming every package older than its floor, or missing.

    Args:
        minimums (dict): Distribution name to its oldest supported (major, minor).
        installed (callable): ``importlib.metadata.version`` (tests pass a fake).
    """
    problems = []
    for name, floor in minimums.items():
        wanted = '.'.join(map(str, floor))
        try:
            found = installed(name)
        except PackageNotFoundError:
            problems.append(f'{name} is not installed (needs >= {wanted})')
            continue
        if release(found)[:len(floor)] < floor:
            problems.append(f'{name} {found} is older than {wanted}')
    if problems:
        needs = ', '.join(f'{name} >= {".".join(map(str, floor))}'
                          for name, floor in minimums.items())
        raise ImportError(f'shufflenet_det needs {needs} (the classic MMDetection 3.3 stack '
                          f'or newer): {"; ".join(problems)}')
