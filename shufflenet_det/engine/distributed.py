"""Distributed training without CUDA through MMEngine's Runner, which assumes a GPU per
process (``init_dist`` sets a CUDA device; DDP gets ``device_ids``, refused on the CPU)."""
import gc
from datetime import timedelta

import torch
import torch.distributed as torch_dist
# Imported before any process group exists: its functions bind the default group as a default
# argument on import (DDP imports it), which would keep gloo's threads alive until exit.
import torch.distributed.nn  # noqa: F401
from mmengine.config import Config

from ..errors import ConfigError


def setup_cpu_distributed(cfg: Config) -> bool:
    """Start the gloo process group of a ``--launcher pytorch`` run without CUDA (the
    Runner then skips ``init_dist``) and give DDP no device ids; return whether it did.

    Raises:
        ConfigError: a Slurm or MPI launcher without CUDA.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise ConfigError(f'launcher {launcher!r} needs CUDA in mmengine 0.10.7; on machines '
                          'without GPUs start each node with torchrun (tools/dist_train.sh) and '
                          "the 'pytorch' launcher")
    if not torch_dist.is_initialized():
        timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout')
        torch_dist.init_process_group(
            backend='gloo', **({} if timeout is None else dict(timeout=timedelta(seconds=timeout))))
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None or wrapper.get('type') in (None, 'MMDistributedDataParallel'):
        # The Runner's default wrapper, whose device_ids PyTorch refuses for a CPU module.
        cfg.model_wrapper_cfg = {
            'broadcast_buffers': False,
            'find_unused_parameters': cfg.get('find_unused_parameters', False),
            **(wrapper or {}), 'type': 'MMDistributedDataParallel', 'device_ids': None}
    return True


def leave_process_group() -> None:
    """Destroy the default process group, if any, which MMEngine never does: a gloo thread
    left to the interpreter's exit can abort a finished run ("terminate called without an
    active exception"). The Runner's reference cycles hold the DDP wrapper: collected first.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        gc.collect()
        torch_dist.destroy_process_group()
