"""One training run per work dir: a lock file holding the owner's pid, host and start time.

Two runs writing into one work dir destroy each other's work: the second one's
checkpoint hook removes the first one's partial checkpoint, and its ``epoch_N.pth``
overwrite the first one's. :func:`work_dir_lock` therefore creates
``WORK_DIR/.train.lock`` with ``os.open(O_CREAT | O_EXCL)`` (atomic, also on NFS v3
and later) and removes it when the block ends, exceptions included. A lock left by a
killed run is taken over, with a log line, when its process is gone from this host
(the pid is dead, or now belongs to a process started later); a lock taken on
another host cannot be checked from here and is respected.
"""
import json
import os
import os.path as osp
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Callable, Optional

from mmengine.logging import print_log

from ..errors import InputError

LOCK_NAME = '.train.lock'
# Where each launcher tells a process its global rank, before the process group exists.
_RANK_VARIABLES = {'pytorch': 'RANK', 'slurm': 'SLURM_PROCID', 'mpi': 'OMPI_COMM_WORLD_RANK'}
# An unreadable lock (its writer was killed between creating and filling it) younger than
# this may still be being written, and is respected.
_UNREADABLE_GRACE_S = 60


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
    now_started = _process_start(pid)
    return started is None or now_started is None or now_started == started


def _describe(holder: dict) -> str:
    since = time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(holder.get('since', 0)))
    return f'pid {holder.get("pid")} on host {holder.get("host")} since {since}'


def _read_holder(path: str) -> Optional[dict]:
    """The lock's content, ``{}`` if it cannot be parsed, None if the lock is gone."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return {}
    try:
        holder = json.loads(text)
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) and isinstance(holder.get('pid'), int) else {}


def _stale_reason(path: str, holder: dict) -> Optional[str]:
    """Why the lock at ``path`` is left over from a run that is gone, or None if it holds."""
    if not holder:
        try:
            age = time.time() - osp.getmtime(path)
        except FileNotFoundError:  # removed meanwhile: the next round creates it
            return 'it was removed'
        return (f'it holds no readable owner and is {age:.0f} s old'
                if age > _UNREADABLE_GRACE_S else None)
    if holder.get('host') != socket.gethostname():
        return None
    if _is_running(holder['pid'], holder.get('started')):
        return None
    return f'its {_describe(holder)} is no longer running'


def _remove_if_unchanged(path: str, seen: dict) -> None:
    """Remove the lock at ``path`` only if it still holds ``seen`` (another run may have
    replaced it since it was read): moved aside first, so only one remover gets it."""
    aside = f'{path}.{uuid.uuid4().hex}.stale'
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    if _read_holder(aside) != seen:
        try:
            os.link(aside, path)  # someone else's fresh lock: put it back
        except FileExistsError:
            pass
    os.remove(aside)


def _create(path: str, content: dict) -> bool:
    """Create the lock file holding ``content``; False if one exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, 'w') as f:
        json.dump(content, f)
    return True


def acquire_work_dir_lock(work_dir: str, log: Callable[[str], None] = print) -> dict:
    """Take ``WORK_DIR/.train.lock``, or raise naming the run that holds it.

    Returns:
        dict: What the lock holds (pid, host, since, started, token); pass it to
        :func:`release_work_dir_lock`.

    Raises:
        WorkDirLockedError: a live run on this host, or any run on another host, holds
            the lock (the message names its pid, host and start time).
    """
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, LOCK_NAME)
    pid = os.getpid()
    mine = dict(pid=pid, host=socket.gethostname(), since=time.time(),
                started=_process_start(pid), token=uuid.uuid4().hex)
    for _ in range(5):  # a few rounds in case another run takes over a stale lock meanwhile
        if _create(path, mine):
            return mine
        holder = _read_holder(path)
        if holder is None:
            continue
        reason = _stale_reason(path, holder)
        if reason is None:
            where = '' if not holder or holder['host'] == mine['host'] else (
                ' (another host: its process cannot be checked from here)')
            owner = _describe(holder) if holder else 'a run whose lock is being written'
            raise WorkDirLockedError(
                f'{work_dir} is in use by another training run: {owner}{where}. Two runs in '
                f'one work dir overwrite each other\'s checkpoints; choose another --work-dir, '
                f'or wait for that run to end (if it is gone, delete {path})')
        log(f'taking over the lock {path}: {reason}')
        _remove_if_unchanged(path, holder)
    raise WorkDirLockedError(f'could not take the lock {path}: other runs keep replacing it')


def release_work_dir_lock(work_dir: str, mine: dict) -> None:
    """Remove ``WORK_DIR/.train.lock`` if it is still the one :func:`acquire_work_dir_lock`
    returned as ``mine``."""
    path = osp.join(work_dir, LOCK_NAME)
    if _read_holder(path) == mine:
        os.remove(path)


@contextmanager
def work_dir_lock(work_dir: str, log: Callable[[str], None] = print) -> Iterator[dict]:
    """Hold ``WORK_DIR/.train.lock`` for the duration of the block (see the module doc)."""
    mine = acquire_work_dir_lock(work_dir, log)
    try:
        yield mine
    finally:
        release_work_dir_lock(work_dir, mine)


def _log(message: str) -> None:
    print_log(message, logger='current')


def lock_work_dir(work_dir: str, launcher: str = 'none') -> AbstractContextManager:
    """:func:`work_dir_lock` in the main process of a run, a no-op in the others.

    The processes of a distributed run share the work dir: the one of global rank 0
    (told by the launcher's environment, as the process group does not exist yet)
    takes the lock for all of them. If it cannot, it stops, and the launcher ends
    the other processes.
    """
    variable = _RANK_VARIABLES.get(launcher)
    rank = int(os.environ.get(variable, 0)) if variable else 0
    return work_dir_lock(work_dir, _log) if rank == 0 else nullcontext()
