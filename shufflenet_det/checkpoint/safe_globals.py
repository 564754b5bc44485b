"""Safe ``torch.load`` of MMEngine checkpoints on every supported torch, allowed per load.

An MMEngine checkpoint holds, besides tensors, ``HistoryBuffer`` objects (the message
hub's logged scalars) and NumPy arrays and scalars. Unpickling anything else could
run arbitrary code, so :data:`SAFE_GLOBALS` allow-lists exactly these types, and
:func:`safe_torch_load` is the one place that reads a checkpoint:

- **torch >= 2.6**: ``torch.load(weights_only=True)`` within
  ``torch.serialization.safe_globals(...)``, which allows :data:`SAFE_GLOBALS` for that
  load only and then restores torch's list as it was.
- **older torch** (the classic stack's 2.1 has no allow-list to extend): the file is read
  through :mod:`.restricted_unpickler`, Python's own unpickler whose ``find_class``
  resolves only torch's weights-only list plus :data:`SAFE_GLOBALS`, and refuses every
  other global with the same message torch gives. Nothing else is ever unpickled.

mmengine 0.10.7's ``HistoryBuffer.__getstate__`` also pickles its class-level table of
statistics functions (``HistoryBuffer.min`` ...); pickle protocol 2, ``torch.save``'s,
writes each as ``builtins.getattr(HistoryBuffer, 'min')``. Allowing ``getattr`` would
weaken the safe loader for everything, so :func:`history_buffer_statistic` stands in for
it: it returns only those methods and refuses any other attribute of anything. The
checkpoints this project writes leave the table out
(:class:`~shufflenet_det.engine.ResumableCheckpointHook`), those of MMEngine's own hook
hold it, and both load. No class of MMEngine is changed for either.

Nothing here changes torch's settings at import. :func:`allow_mmengine_checkpoints` does,
for the whole process, when a user's own script calls it.
"""
import pickle

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

from ..versions import release
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
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def history_buffer_statistic(obj, name: str):
    """``getattr`` as an unpickled checkpoint may call it: ``HistoryBuffer``'s statistics only.

    Raises:
        pickle.UnpicklingError: any other object or attribute, with torch's words
            (``Unsupported global: GLOBAL builtins.getattr``).
    """
    if obj is HistoryBuffer and name in HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        'Weights only load failed. Unsupported global: GLOBAL builtins.getattr (a checkpoint '
        f'may only look up HistoryBuffer.{"/".join(HISTORY_BUFFER_STATISTICS)} through it, '
        f'not {getattr(obj, "__name__", type(obj).__qualname__)}.{name})')


# The types, and the getattr stand-in under the name a pickle calls it by.
SAFE_GLOBALS = [*SAFE_TYPES, (history_buffer_statistic, 'builtins.getattr')]

# torch 2.6 is the first whose allow-list takes (object, 'module.name') pairs and can be
# extended for one load (torch.serialization.safe_globals); 2.4-2.5 lack the pairs, 2.1 both.
HAS_SAFE_GLOBALS = release(torch.__version__) >= (2, 6)
_RESTRICTED_PICKLE = None if HAS_SAFE_GLOBALS else for_types(SAFE_GLOBALS)


def allow_mmengine_checkpoints() -> None:
    """Let torch's safe loader read MMEngine's checkpoints anywhere in this process.

    For a user's own script whose code, or MMEngine's, calls ``torch.load`` with
    ``weights_only=True`` (the default from torch 2.6) on an MMEngine checkpoint, e.g.
    ``DetInferencer(weights=...)`` or ``Runner.resume``. It **changes process-wide state**:
    it adds :data:`SAFE_GLOBALS` to torch's safe globals
    (``torch.serialization.add_safe_globals``) for the rest of the process. ``import
    shufflenet_det`` never calls it, and the project's tools do not need it: they read
    checkpoints through :func:`safe_torch_load`, which allows these types for each load
    only. Idempotent. Changes nothing on torch < 2.6, whose ``torch.load`` either has no
    list to extend (2.1 to 2.3, where ``weights_only=False`` is the default) or no pairs;
    there, use :func:`~shufflenet_det.checkpoint.mmengine_loading.mmengine_loads_safely`.
    """
    if HAS_SAFE_GLOBALS:
        torch.serialization.add_safe_globals(SAFE_GLOBALS)


def safe_torch_load(path, map_location='cpu'):
    """``torch.load`` that unpickles only tensors, plain containers and :data:`SAFE_GLOBALS`.

    Changes no setting of torch's beyond the load itself.

    Raises:
        pickle.UnpicklingError: the file holds another type; the message has
            ``Unsupported global: GLOBAL module.name`` as torch's own safe loader says.
    """
    if not HAS_SAFE_GLOBALS:
        return torch.load(path, map_location=map_location, weights_only=False,
                          pickle_module=_RESTRICTED_PICKLE)
    present = set(torch.serialization.get_safe_globals())
    # Only what is missing: the context removes what it added, so a user's own
    # allow_mmengine_checkpoints() stays in force after this load.
    with torch.serialization.safe_globals([g for g in SAFE_GLOBALS if g not in present]):
        return torch.load(path, map_location=map_location, weights_only=True)
