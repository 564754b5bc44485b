"""A ``pickle_module`` for ``torch.load`` that resolves only allow-listed globals.

For torch < 2.4, which has no ``torch.serialization.add_safe_globals``: its
``weights_only=True`` loader takes a fixed list that cannot be extended. This is the
restriction the Python documentation recommends ("Restricting Globals"): the standard
unpickler, whose ``find_class`` returns a global only if it is in torch's own
weights-only list or one of the given types, and otherwise raises the error torch's
safe loader raises. Only those callables can run while a file is read.
"""
import _codecs
import _compat_pickle
import builtins
import collections
import pickle
import types
from collections.abc import Iterable

import torch

# NumPy 2 pickles its reconstructors under numpy._core, NumPy 1 under numpy.core; a
# checkpoint written with either must load with the other.
_NUMPY_ALIASES = (('numpy._core.', 'numpy.core.'), ('numpy.core.', 'numpy._core.'))


def _torch_weights_only_globals() -> dict:
    allowed = getattr(getattr(torch, '_weights_only_unpickler', None), '_get_allowed_globals',
                      None)
    allowed = dict(allowed()) if allowed is not None else {}
    # What torch 2.11's list adds to torch 2.1's, other than torch's own types: plain data
    # types that checkpoints hold (MultiStepLR keeps its milestones in a Counter).
    # Pickle protocol 2 (torch.save's) writes bytes, such as a NumPy array's data, as
    # _codecs.encode(str, 'latin1').
    for obj in (collections.Counter, builtins.set, builtins.bytearray, builtins.complex):
        allowed[f'{obj.__module__}.{obj.__qualname__}'] = obj
    allowed['_codecs.encode'] = _codecs.encode
    return allowed


def allowed_globals(safe_types: Iterable) -> dict:
    """``'module.name'`` to object, for torch's weights-only list plus ``safe_types``.

    As in ``torch.serialization.add_safe_globals``, an item is an object, allowed under its
    own ``module.qualname``, or an ``(object, 'module.name')`` pair, allowed under that name.
    """
    allowed = _torch_weights_only_globals()
    for item in safe_types:
        obj, name = item if isinstance(item, tuple) else (
            item, f'{item.__module__}.{item.__qualname__}')
        allowed[name] = obj
        for prefix, alias in _NUMPY_ALIASES:
            if name.startswith(prefix):
                allowed[alias + name[len(prefix):]] = obj
    return allowed


def for_types(safe_types: Iterable) -> types.ModuleType:
    """A module with ``Unpickler`` and ``load``, as ``torch.load(pickle_module=...)`` uses.

    ``safe_types`` as in :func:`allowed_globals`.
    """
    allowed = allowed_globals(safe_types)

    class Unpickler(pickle.Unpickler):

        def find_class(self, module: str, name: str):
            # Protocol 2 spells Python 3's names the Python 2 way (__builtin__.set).
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
            try:
                return allowed[f'{module}.{name}']
            except KeyError:
                raise pickle.UnpicklingError(
                    f'Weights only load failed. Unsupported global: GLOBAL {module}.{name}'
                ) from None

    def load(file, **kwargs):
        return Unpickler(file, **kwargs).load()

    module = types.ModuleType('shufflenet_det_restricted_pickle')
    module.Unpickler, module.load = Unpickler, load
    return module
