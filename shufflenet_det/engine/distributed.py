"""Distributed training on machines without CUDA, still through MMEngine's Runner and DDP.

mmengine 0.10.7 assumes a GPU per process in two places: ``init_dist`` calls
``torch.cuda.set_device(LOCAL_RANK)``, and the Runner hands DDP
``device_ids=[LOCAL_RANK]``, which PyTorch refuses for a CPU module. Without
CUDA, :func:`setup_cpu_distributed` therefore starts the gloo process group
itself (the Runner then skips ``init_dist``) and selects
:class:`CPUDistributedDataParallel`, MMEngine's DDP wrapper without device ids.
Everything else (samplers, gradient all-reduce, metric collection) is
MMEngine's and PyTorch's own.
"""
import datetime
import gc

import torch
import torch.distributed as torch_dist
# Imported before any process group exists, on purpose: its functions bind the default group
# as a default argument when the module is first imported, and DDP imports it while building.
# Imported after init_process_group, it would keep the group, and gloo's worker threads,
# alive until the interpreter's exit (see leave_process_group).
import torch.distributed.nn  # noqa: F401
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS  # the Runner looks wrappers up in MMEngine's root

from ..errors import ConfigError


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that drops ``device_ids`` for a module on the CPU."""

    def __init__(self, module, device_ids=None, **kwargs) -> None:
        if all(p.device.type == 'cpu' for p in module.parameters()):
            device_ids = None
        super().__init__(module=module, device_ids=device_ids, **kwargs)


def setup_cpu_distributed(cfg: Config) -> bool:
    """Prepare a ``--launcher pytorch`` run on a machine without CUDA.

    Starts the gloo process group from torchrun's environment (``RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``) and sets
    ``cfg.model_wrapper_cfg`` to :class:`CPUDistributedDataParallel` unless the
    config chose a wrapper.

    Returns:
        bool: True if it did so; False when the run is not distributed or CUDA
        is available (MMEngine's own setup applies).

    Raises:
        ConfigError: a Slurm or MPI launcher without CUDA (mmengine 0.10.7 needs a
            GPU per task there); launch those jobs through torchrun instead.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise ConfigError(f'launcher {launcher!r} needs CUDA in mmengine 0.10.7; on machines '
                         'without GPUs start each node with torchrun (tools/dist_train.sh) and '
                         "the 'pytorch' launcher")
    dist_cfg = dict(cfg.get('env_cfg', {}).get('dist_cfg', {}))
    backend = dist_cfg.pop('backend', 'gloo')
    if backend != 'gloo':
        print_log(f'no CUDA device: using the gloo backend instead of {backend!r}',
                  logger='current')
    if not torch_dist.is_initialized():
        timeout = dist_cfg.get('timeout')
        kwargs = {} if timeout is None else dict(timeout=datetime.timedelta(seconds=timeout))
        torch_dist.init_process_group(backend='gloo', **kwargs)
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None or wrapper.get('type') in (None, 'MMDistributedDataParallel'):
        wrapper = dict(wrapper or {}, type='CPUDistributedDataParallel')
        wrapper.setdefault('broadcast_buffers', False)  # what the Runner's default DDP uses
        wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
        cfg.model_wrapper_cfg = wrapper
    return True


def leave_process_group() -> None:
    """Destroy the default process group, if this process is in one, and stop its threads.

    MMEngine never destroys it. Left to the interpreter's exit, a gloo worker thread
    that releases the last collective's tensors after Python has begun to finalize
    aborts the process ("terminate called without an active exception", SIGABRT)
    after the work has finished (a training or a distributed ``tools/test.py``), and
    torchrun then reports the whole run as failed. Destroying the group joins those
    threads only once nothing else holds it: the Runner that owned the DDP wrapper
    sits in reference cycles, so they are collected first.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        gc.collect()
        torch_dist.destroy_process_group()
