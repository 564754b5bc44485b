"""Safe loading on every supported torch: the restricted unpickler that torch < 2.6 uses, torch's
own safe loader allowing MMEngine's types for one load, and MMEngine's local reads routed
through them by the tools."""
import io
import pickle
from collections import Counter

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

from shufflenet_det.checkpoint import (UnsafeCheckpointError, load_checkpoint_file,
                                      mmengine_loads_safely, safe_torch_load)
from shufflenet_det.checkpoint.files import (HAS_SAFE_GLOBALS, SAFE_GLOBALS, SAFE_TYPES,
                                             history_buffer_statistic, restricted_pickle_module)


class RunsCode:
    def __reduce__(self):
        return (print, ('this must never run',))


def restricted_load(path):
    """What safe_torch_load does on torch < 2.6, run on whatever torch is installed."""
    return torch.load(path, map_location='cpu', weights_only=False,
                      pickle_module=restricted_pickle_module(SAFE_GLOBALS))


def mmengine_like_checkpoint():
    """As MMEngine's own CheckpointHook writes one: its HistoryBuffer pickles the class's table
    of statistics methods, as builtins.getattr(HistoryBuffer, 'min') and so on."""
    buffer = HistoryBuffer()
    for value in (2.5, 1.5):
        buffer.update(value)
    return {'state_dict': {'w': torch.randn(3, 3), 'h': torch.randn(2).half()},
            'message_hub': {'log_scalars': {'loss': buffer},
                            'runtime_info': {'iter': 4, 'order': np.arange(3),
                                             'best': np.float64(0.25)}},
            'optimizer': {'state': {0: {'momentum_buffer': torch.ones(2)}},
                          'param_groups': [{'lr': 0.02, 'params': [0]}]},
            'param_schedulers': [{'milestones': Counter([8, 11]), 'by_epoch': True}],
            'meta': {'classes': ('a', 'b'), 'seed': 0}}


def test_the_restricted_unpickler_reads_an_mmengine_checkpoint(tmp_path):
    ckpt = mmengine_like_checkpoint()
    torch.save(ckpt, tmp_path / 'ckpt.pth')
    loaded = restricted_load(tmp_path / 'ckpt.pth')
    assert torch.equal(loaded['state_dict']['w'], ckpt['state_dict']['w'])
    assert loaded['state_dict']['h'].dtype == torch.float16
    np.testing.assert_array_equal(loaded['message_hub']['log_scalars']['loss'].data[0],
                                  [2.5, 1.5])
    np.testing.assert_array_equal(loaded['message_hub']['runtime_info']['order'], [0, 1, 2])
    assert loaded['message_hub']['runtime_info']['best'] == 0.25
    assert loaded['meta'] == ckpt['meta']
    assert loaded['param_schedulers'][0]['milestones'] == Counter([8, 11])


def test_the_restricted_unpickler_refuses_any_other_global(tmp_path, capsys):
    torch.save({'state_dict': {}, 'x': RunsCode()}, tmp_path / 'evil.pth')
    with pytest.raises(pickle.UnpicklingError, match='Unsupported global: GLOBAL builtins.print'):
        restricted_load(tmp_path / 'evil.pth')
    assert 'must never run' not in capsys.readouterr().out


@pytest.mark.parametrize('module', ['numpy.core.multiarray', 'numpy._core.multiarray'])
def test_numpy_arrays_load_whichever_numpy_major_wrote_them(module):
    # NumPy 1 pickles its reconstructor under numpy.core, NumPy 2 under numpy._core.
    unpickler = restricted_pickle_module(SAFE_GLOBALS).Unpickler
    assert unpickler(io.BytesIO()).find_class(module, '_reconstruct') is \
        np.zeros(1).__reduce__()[0]


def test_the_tools_route_mmengine_local_reads_through_the_safe_loader(tmp_path):
    torch.save({'state_dict': {}, 'x': RunsCode()}, tmp_path / 'evil.pth')
    torch.save(mmengine_like_checkpoint(), tmp_path / 'good.pth')
    before = CheckpointLoader._schemes['']
    with mmengine_loads_safely():
        assert _load_checkpoint(str(tmp_path / 'good.pth'))['meta']['seed'] == 0
        # torch >= 2.4 names the global 'print', the restricted unpickler 'builtins.print'.
        with pytest.raises(UnsafeCheckpointError, match=r'evil.pth was refused: it contains an '
                           r'object of type (builtins\.)?print,'):
            _load_checkpoint(str(tmp_path / 'evil.pth'))
    assert CheckpointLoader._schemes[''] is before


def test_mmengine_checkpoints_hold_the_statistics_table_through_getattr(tmp_path):
    torch.save(mmengine_like_checkpoint(), tmp_path / 'ckpt.pth')
    with pytest.raises(pickle.UnpicklingError, match='Unsupported global: GLOBAL '
                       '(builtins.)?getattr'):  # what the stand-in is for
        torch.load(tmp_path / 'ckpt.pth', map_location='cpu', weights_only=False,
                   pickle_module=restricted_pickle_module(SAFE_TYPES))


def test_safe_torch_load_reads_the_table_and_leaves_torch_as_it_was(tmp_path):
    get_safe = getattr(torch.serialization, 'get_safe_globals', None)
    # A set: torch keeps its list in a set, whose order may change as the load adds to it.
    before = set(get_safe()) if get_safe else None
    torch.save(mmengine_like_checkpoint(), tmp_path / 'ckpt.pth')
    loaded = safe_torch_load(tmp_path / 'ckpt.pth')
    buffer = loaded['message_hub']['log_scalars']['loss']
    assert type(buffer) is HistoryBuffer and buffer.mean() == 2.0
    assert (set(get_safe()) if get_safe else None) == before


@pytest.mark.parametrize('obj, name', [(HistoryBuffer, '__init__'), (HistoryBuffer, 'update'),
                                       (torch, 'load'), (np, 'load')])
def test_the_getattr_stand_in_gives_only_the_statistics_methods(obj, name):
    assert history_buffer_statistic(HistoryBuffer, 'mean') is HistoryBuffer.mean
    with pytest.raises(pickle.UnpicklingError,
                       match=rf'Unsupported global: GLOBAL builtins.getattr \(a checkpoint may '
                       rf'only look up HistoryBuffer.min/max/current/mean through it, not '
                       rf'\S+\.{name}\)'):
        history_buffer_statistic(obj, name)


class CallsGetattr:
    def __reduce__(self):  # what could register a function of its own as a statistic
        return (getattr, (HistoryBuffer, 'register_statistics'))


def test_a_checkpoint_calling_getattr_on_anything_else_is_refused(tmp_path):
    torch.save({'state_dict': {}, 'x': CallsGetattr()}, tmp_path / 'evil.pth')
    with pytest.raises(UnsafeCheckpointError, match=r'evil.pth was refused: it contains an '
                       r'object of type builtins.getattr,'):
        load_checkpoint_file(tmp_path / 'evil.pth')


@pytest.mark.skipif(not HAS_SAFE_GLOBALS, reason='torch < 2.6: no allow-list of (object, name)')
def test_allow_mmengine_checkpoints_lets_torchs_own_safe_loader_read_them(tmp_path):
    from shufflenet_det.checkpoint import allow_mmengine_checkpoints
    torch.save(mmengine_like_checkpoint(), tmp_path / 'ckpt.pth')
    before = torch.serialization.get_safe_globals()
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        torch.load(tmp_path / 'ckpt.pth', weights_only=True)  # import allowed nothing
    try:
        allow_mmengine_checkpoints()
        loaded = torch.load(tmp_path / 'ckpt.pth', weights_only=True)
        assert loaded['message_hub']['log_scalars']['loss'].mean() == 2.0
        safe_torch_load(tmp_path / 'ckpt.pth')  # leaves the user's allow-list in force
        assert set(torch.serialization.get_safe_globals()) == set(before) | set(SAFE_GLOBALS)
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(before)
