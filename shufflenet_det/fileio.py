"""Output files that appear complete or not at all, and destinations checked up front.

Everything the project writes goes through :func:`atomic_path`: written under a hidden
temporary name beside the destination, renamed onto it when complete. A crash leaves
the previous file, never a truncated one.
"""
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Optional

from .errors import ConfigError

PARTIAL_SUFFIX = '.partial'


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path`` (keeping its extension, for writers that choose
    a format by it); rename it onto ``path`` when the block ends, remove it on an error."""
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.stem}.{secrets.token_hex(8)}{PARTIAL_SUFFIX}{path.suffix}')
    # Mode 0o666 under the umask of the moment, as open() gives (mkstemp would give 0o600).
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield str(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = 'w') -> Iterator[IO]:
    """``open(path, mode)`` through :func:`atomic_path`, flushed to disk before the rename."""
    with atomic_path(path) as tmp, open(tmp, mode) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


class OutputPathError(ConfigError):
    """An output file or folder that cannot be written where the user asked."""


def check_writable(path: Optional[str | os.PathLike], option: str = 'output',
                   directory: bool = False) -> None:
    """Raise unless ``path`` can be written: a file, or with ``directory=True`` a folder to
    write into; missing parents must be creatable. ``None`` and URLs pass.

    Args:
        path (str | PathLike, optional): The destination.
        option (str): How the user named it, for the message (e.g. ``'--out'``).
        directory (bool): ``path`` is a folder the tool writes files into.

    Raises:
        OutputPathError: one line naming the option, the path and why.
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
    existing = target if directory else target.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputPathError(f'{option} {path}: cannot create it, {existing} is a file, '
                              'not a folder')
    if not os.access(existing, os.W_OK | os.X_OK):
        what = 'folder' if existing in (target, target.parent) else 'nearest existing folder'
        raise OutputPathError(f'{option} {path}: the {what} {existing} is not writable')
