"""MMEngine's local checkpoint reads (``load_from``, ``--resume``, ``Pretrained``), made safe.

MMEngine reads local files with a bare ``torch.load``, whose default is
``weights_only=False`` on torch < 2.6: a checkpoint could then run arbitrary code while
it loads. From torch 2.6 the default is ``weights_only=True`` with torch's own allow-list,
which refuses MMEngine's ``HistoryBuffer`` (``import shufflenet_det`` does not extend it).
Within :func:`mmengine_loads_safely`, MMEngine's loader for local paths is
:func:`~shufflenet_det.checkpoint.files.load_checkpoint_file` instead, which unpickles
only tensors, plain containers and MMEngine's own checkpoint types on every supported
torch, and names the file in its errors. The tools in ``tools/`` run inside it.
"""
import os.path as osp
from collections.abc import Iterator
from contextlib import contextmanager

from mmengine.runner.checkpoint import CheckpointLoader

from .files import load_checkpoint_file

_LOCAL = ''  # the prefix MMEngine registers its local loader under: it matches any path


def load_from_local_safely(filename: str, map_location=None):
    """MMEngine's ``load_from_local``, reading through :func:`load_checkpoint_file`."""
    return load_checkpoint_file(osp.expanduser(filename), map_location)


@contextmanager
def mmengine_loads_safely() -> Iterator[None]:
    """Route MMEngine's local checkpoint reads through the safe loader, then restore it."""
    previous = CheckpointLoader._schemes.get(_LOCAL)
    CheckpointLoader.register_scheme(prefixes=_LOCAL, loader=load_from_local_safely, force=True)
    try:
        yield
    finally:
        if previous is not None:
            CheckpointLoader.register_scheme(prefixes=_LOCAL, loader=previous, force=True)
