"""How every tool in ``tools/`` ends: exit status 0, 1 for a failed check, 2 for bad input."""
import sys
from collections.abc import Callable

from mmengine.registry import init_default_scope

from ..checkpoint.mmengine_loading import mmengine_loads_safely
from ..engine import leave_process_group
from ..errors import CheckFailedError, InputError


def run_tool(function: Callable, *args, **kwargs) -> int:
    """Call ``function`` in mmdet's registry scope and turn its outcome into an exit status.

    An :class:`~shufflenet_det.errors.InputError` (a missing or broken file, a value
    outside what is allowed, a config that cannot work) is printed as
    ``error: MESSAGE`` on stderr and gives 2; a
    :class:`~shufflenet_det.errors.CheckFailedError` (the tool's own check of its
    result) gives 1. Any other exception keeps its traceback: it is a bug, not bad
    input. Checkpoints that MMEngine reads meanwhile go through the safe loader
    (:func:`~shufflenet_det.checkpoint.mmengine_loading.mmengine_loads_safely`). A
    distributed run's process group is destroyed when the tool ends, however it ends
    (:func:`~shufflenet_det.engine.leave_process_group`).

    Returns:
        int: The exit status.
    """
    init_default_scope('mmdet')
    try:
        with mmengine_loads_safely():
            function(*args, **kwargs)
    except InputError as exc:
        print(f'error: {exc}', file=sys.stderr, flush=True)
        return 2
    except CheckFailedError as exc:
        print(f'error: {exc}', file=sys.stderr, flush=True)
        return 1
    finally:
        leave_process_group()
    return 0
