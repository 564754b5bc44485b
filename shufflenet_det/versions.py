"""The oldest torch, torchvision and NumPy the package runs on, checked at import.

Not install requirements: pip would otherwise replace a user's torch, or move NumPy 1.x to
2.x under a torch built for 1.x. The floors are the classic stack CI tests
(``requirements/classic.txt``).
"""
import re
from importlib.metadata import PackageNotFoundError, version

MINIMUM_VERSIONS = {'torch': (2, 1), 'torchvision': (0, 16), 'numpy': (1, 26)}


def release(text: str) -> tuple[int, ...]:
    """``'2.1.2+cu121'`` -> ``(2, 1, 2)``."""
    return tuple(int(part) for part in re.findall(r'\d+', text.split('+')[0])[:3])


def check_version_floors(minimums=MINIMUM_VERSIONS, installed=version) -> None:
    """Raise an ImportError naming every package older than its floor, or missing."""
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
