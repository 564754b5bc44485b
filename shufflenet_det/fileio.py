"""Output files that appear complete or not at all.

Everything this project writes (checkpoints, metrics, predictions, drawings,
ONNX models, generated annotations) goes through :func:`atomic_path`: the data
is written under a hidden temporary name in the destination's folder and
renamed onto the destination only when complete. A crash or a kill leaves the
previous file, never a truncated one; an exception also removes the temporary
file.

Tools check their destinations with :func:`check_writable` before the work starts,
so that a read-only folder or a folder given as a file fails in the first second,
not after an hour of training or benchmarking.
"""
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Optional

from .errors import ConfigError

PARTIAL_SUFFIX = '.partial'


def current_umask() -> int:
    """The process's umask, read when a file is written; never changed for good.

    Linux reports it in ``/proc/self/status`` (``Umask:``, since Linux 4.7). Elsewhere
    it can only be read by setting it, so it is set to ``0o077`` and put back at once:
    a file another thread creates meanwhile is private to its owner, not open to
    everyone as under a mask of 0.
    """
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block ends.

    The temporary name keeps ``path``'s extension (``.name.XXXX.partial.png``), for
    writers that choose a format by extension.
    """
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.stem}.',
                               suffix=f'{PARTIAL_SUFFIX}{path.suffix}', dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the mode open() would have.
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = 'w') -> Iterator[IO]:
    """``open(path, mode)`` through :func:`atomic_path`, flushed to disk before the rename."""
    with atomic_path(path) as tmp, open(tmp, mode) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


class OutputPathError(ConfigError):
    """An output file or folder that cannot be written where the user asked."""


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(path: Optional[str | os.PathLike], option: str = 'output',
                   directory: bool = False) -> None:
    """Raise unless ``path`` can be written: a file (through :func:`atomic_path`), or a
    folder to write into with ``directory=True``. ``None`` and URLs (``s3://...``) pass.

    Missing parent folders are fine when they can be created, as :func:`atomic_path`
    creates them. The check is :func:`os.access`, which allows everything to root
    except on a read-only file system.

    Args:
        path (str | PathLike, optional): The destination.
        option (str): How the user named it, for the message (e.g. ``'--out'``).
        directory (bool): ``path`` is a folder the tool writes files into.

    Raises:
        OutputPathError: one line naming the option, the path and why: it exists as a
            folder (a file was expected) or as a file (a folder was expected), a parent
            is a file, or the folder it would be written in is not writable.
    """
    if path is None or '://' in str(path):
        return
    target = Path(path).absolute()
    if target.is_dir() and not directory:
        raise OutputPathError(f'{option} {path}: is a folder; expected a file name')
    if target.exists() and not target.is_dir() and directory:
        raise OutputPathError(f'{option} {path}: is a file; expected a folder')
    if target.exists() and not os.access(target, os.W_OK):
        raise OutputPathError(f'{option} {path}: is not writable')
    existing = _nearest_existing(target if directory else target.parent)
    if not existing.is_dir():
        raise OutputPathError(f'{option} {path}: cannot create it, {existing} is a file, '
                              'not a folder')
    if not os.access(existing, os.W_OK | os.X_OK):
        what = 'folder' if existing in (target, target.parent) else 'nearest existing folder'
        raise OutputPathError(f'{option} {path}: the {what} {existing} is not writable')
