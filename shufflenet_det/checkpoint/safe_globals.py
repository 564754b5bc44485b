"""Safe ``torch.load`` of MMEngine checkpoints on every supported torch.

An MMEngine checkpoint holds, besides tensors, ``HistoryBuffer`` objects (the message
hub's logged scalars) and NumPy arrays and scalars. Unpickling anything else could
run arbitrary code, so :data:`SAFE_TYPES` allow-lists exactly these types, and
:func:`safe_torch_load` is the one place that reads a checkpoint:

- **torch >= 2.4** has the safe loader with allow-lists
  (``torch.serialization.add_safe_globals``): ``torch.load(weights_only=True)``, with
  :data:`SAFE_TYPES` added by :func:`allow_mmengine_checkpoints` (``import
  shufflenet_det`` calls it, so MMEngine's own ``torch.load`` in ``--resume`` reads
  them too on torch >= 2.6, where ``weights_only=True`` is the default).
- **torch < 2.4** (the classic stack's 2.1) has ``weights_only=True`` with a fixed
  list only, which refuses ``HistoryBuffer``. There the file is read through
  :mod:`.restricted_unpickler`: Python's own unpickler whose ``find_class`` resolves
  only torch's weights-only list plus :data:`SAFE_TYPES`, and refuses every other
  global with the same message torch gives. Nothing else is ever unpickled.

``HistoryBuffer.__getstate__`` also pickles its class-level table of statistics
functions, which unpickling reaches through ``builtins.getattr``; allowing that would
weaken the safe loader for everything. The table is rebuilt at import in every
process, so it is left out of the pickled state.
"""
import numpy as np
import torch
from mmengine.logging import HistoryBuffer

from .restricted_unpickler import for_types

# Taken from NumPy's own pickles, not from module paths: NumPy 2 moved them from
# ``numpy.core.multiarray`` to ``numpy._core.multiarray``.
_NUMPY_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_NUMPY_SCALAR = np.float64(0).__reduce__()[0]

SAFE_TYPES = [
    HistoryBuffer,
    np.ndarray,
    np.dtype,
    _NUMPY_RECONSTRUCT,
    _NUMPY_SCALAR,
    *(type(np.dtype(t)) for t in (np.float16, np.float32, np.float64, np.int8, np.int16,
                                  np.int32, np.int64, np.uint8, np.bool_)),
]

# torch >= 2.4; feature-tested, since the classic stack's torch 2.1 lacks it.
HAS_SAFE_GLOBALS = hasattr(torch.serialization, 'add_safe_globals')
_RESTRICTED_PICKLE = None if HAS_SAFE_GLOBALS else for_types(SAFE_TYPES)


def _history_buffer_state(self: HistoryBuffer) -> dict:
    return {k: v for k, v in self.__dict__.items() if k != 'statistics_methods'}


def allow_mmengine_checkpoints() -> None:
    """Let safe loading read MMEngine's checkpoint types (idempotent).

    ``import shufflenet_det`` calls it. On torch < 2.4 there is no allow-list to
    extend; :func:`safe_torch_load` reads such files there.
    """
    HistoryBuffer.__getstate__ = _history_buffer_state
    if HAS_SAFE_GLOBALS:
        torch.serialization.add_safe_globals(SAFE_TYPES)


def safe_torch_load(path, map_location='cpu'):
    """``torch.load`` that unpickles only tensors, plain containers and :data:`SAFE_TYPES`.

    Raises:
        pickle.UnpicklingError: the file holds another type; the message has
            ``Unsupported global: GLOBAL module.name`` as torch's own safe loader says.
    """
    if HAS_SAFE_GLOBALS:
        return torch.load(path, map_location=map_location, weights_only=True)
    return torch.load(path, map_location=map_location, weights_only=False,
                      pickle_module=_RESTRICTED_PICKLE)
