"""How every tool in ``tools/`` ends: exit status 0, 1 for a failed check, 2 for bad input."""
import sys
from collections.abc import Callable

from mmengine.registry import init_default_scope

from ..checkpoint import mmengine_loads_safely
from ..engine import leave_process_group
from ..errors import CheckFailedError, InputError


def run_tool(function: Callable, *args, **kwargs) -> int:
    """Call ``function`` in mmdet's scope, MMEngine's checkpoint reads made safe, and return
    the exit status: 2 for an InputError, 1 for a CheckFailedError (each printed as one
    ``error: MESSAGE`` line). Other exceptions keep their traceback: they are bugs. A
    distributed run's process group is destroyed however the tool ends."""
    init_default_scope('mmdet')
    try:
        with mmengine_loads_safely():
            function(*args, **kwargs)
    except (InputError, CheckFailedError) as exc:
        print(f'error: {exc}', file=sys.stderr, flush=True)
        return 2 if isinstance(exc, InputError) else 1
    finally:
        leave_process_group()
    return 0
