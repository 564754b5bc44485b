"""Output files that appear complete or not at all.

Everything this project writes (checkpoints, metrics, predictions, drawings,
ONNX models, generated annotations) goes through :func:`atomic_path`: the data
is written under a hidden temporary name in the destination's folder and
renamed onto the destination only when complete. A crash or a kill leaves the
previous file, never a truncated one; an exception also removes the temporary
file.
"""
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

PARTIAL_SUFFIX = '.partial'
_UMASK = os.umask(0)
os.umask(_UMASK)


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
        os.chmod(tmp, 0o666 & ~_UMASK)
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
