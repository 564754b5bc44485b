"""Let ``torch.load``'s safe default (``weights_only=True``) read MMEngine checkpoints.

torch >= 2.6 refuses to unpickle anything but tensors and plain containers unless
its type is allow-listed, and mmengine 0.10.7 does not allow-list its own types:
``--resume`` fails with "Unsupported global: ... HistoryBuffer". Turning the safe
default off (``weights_only=False``) would let a checkpoint run arbitrary code.
Instead, the exact data types an MMEngine checkpoint holds are allow-listed:
``HistoryBuffer`` (the message hub's logged scalars) and NumPy arrays and scalars.

One more thing stands in the way: ``HistoryBuffer.__getstate__`` also pickles its
class-level table of statistics functions, which unpickling reaches through
``builtins.getattr``; allowing that would weaken the safe loader for everything.
The table is rebuilt at import in every process, so it is left out of the pickled
state; checkpoints written this way load with ``weights_only=True``.
"""
import numpy as np
import torch
from mmengine.logging import HistoryBuffer

_SAFE_TYPES = [
    HistoryBuffer,
    np.ndarray,
    np.dtype,
    np._core.multiarray._reconstruct,
    np._core.multiarray.scalar,
    *(type(np.dtype(t)) for t in (np.float16, np.float32, np.float64, np.int8, np.int16,
                                  np.int32, np.int64, np.uint8, np.bool_)),
]


def _history_buffer_state(self: HistoryBuffer) -> dict:
    return {k: v for k, v in self.__dict__.items() if k != 'statistics_methods'}


def allow_mmengine_checkpoints() -> None:
    """Allow-list MMEngine's checkpoint types for ``torch.load(weights_only=True)``.

    Idempotent; ``import shufflenet_det`` calls it.
    """
    HistoryBuffer.__getstate__ = _history_buffer_state
    torch.serialization.add_safe_globals(_SAFE_TYPES)
