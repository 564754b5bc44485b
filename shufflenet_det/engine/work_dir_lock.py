"""One training run per work dir, as two would overwrite each other's checkpoints: the
run holds ``WORK_DIR/.train.lock``, written whole and linked into place (which fails if
one exists). A lock whose process is gone from this host (dead, or its pid reused) is
taken over; one from another host cannot be checked and is respected.
"""
import contextlib
import functools
import json
import os
import os.path as osp
import socket
import time
import uuid
from typing import Callable, Optional

from mmengine.logging import print_log

from ..errors import InputError

LOCK_NAME = '.train.lock'
# Where each launcher tells a process its global rank, before the process group exists.
_RANK_VARIABLES = {'pytorch': 'RANK', 'slurm': 'SLURM_PROCID', 'mpi': 'OMPI_COMM_WORLD_RANK'}


class WorkDirLockedError(InputError, RuntimeError):
    """Another training run holds the work dir's lock."""


def _process_start(pid: int) -> Optional[str]:
    """The start time of process ``pid`` in clock ticks since boot (Linux), else None."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            # The command name (field 2) may hold spaces; the fields after it do not.
            return f.read().rsplit(')', 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _is_running(pid: int, started: Optional[str]) -> bool:
    """Whether ``pid`` is a live process on this host and the one that took the lock."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        pass
    return started is None or _process_start(pid) in (None, started)


def _read(path: str) -> Optional[dict]:
    """The lock's holder, ``{}`` if it cannot be read, None if there is no lock."""
    try:
        with open(path) as f:
            holder = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) and isinstance(holder.get('pid'), int) else {}


@contextlib.contextmanager
def lock_work_dir(work_dir: str, launcher: str = 'none',
                  log: Callable = functools.partial(print_log, logger='current')):
    """Hold ``WORK_DIR/.train.lock`` for the block, in the process of global rank 0 only
    (the launcher's environment tells it; if it stops, the launcher ends the others), or
    raise :class:`WorkDirLockedError` naming the live run that holds it."""
    variable = _RANK_VARIABLES.get(launcher)
    if variable and int(os.environ.get(variable, 0)) != 0:
        yield None
        return
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, LOCK_NAME)
    mine = dict(pid=os.getpid(), host=socket.gethostname(), since=time.time(),
                started=_process_start(os.getpid()), token=uuid.uuid4().hex)
    with open(f'{path}.{mine["token"]}', 'w') as f:
        json.dump(mine, f)
    try:
        while True:  # another round when a stale lock was removed or the lock vanished
            with contextlib.suppress(FileExistsError):
                os.link(f.name, path)
                break
            holder = _read(path)
            if holder is None:
                continue
            since = time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(holder.get('since', 0)))
            owner = f'pid {holder.get("pid")} on host {holder.get("host")} since {since}'
            here = holder.get('host') == mine['host']
            if not holder or here and not _is_running(holder['pid'], holder.get('started')):
                reason = f'its {owner} is no longer running' if holder else 'it is unreadable'
                log(f'taking over the lock {path}: {reason}')
                # Moved aside first, so that only one run removes it, and put back if another
                # run replaced it since it was read.
                aside = f'{f.name}.stale'
                with contextlib.suppress(FileNotFoundError):
                    os.rename(path, aside)
                    if _read(aside) != holder:
                        with contextlib.suppress(FileExistsError):
                            os.link(aside, path)
                    os.remove(aside)
                continue
            raise WorkDirLockedError(
                f'{work_dir} is in use by another training run: {owner}'
                f'{"" if here else " (another host: its process cannot be checked from here)"}. '
                'Two runs in one work dir overwrite each other\'s checkpoints; choose another '
                f'--work-dir, or wait for that run to end (if it is gone, delete {path})')
    finally:
        os.remove(f.name)
    try:
        yield mine
    finally:
        if _read(path) == mine:  # not taken over by another run meanwhile
            os.remove(path)
