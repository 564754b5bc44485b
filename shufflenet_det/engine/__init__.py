"""Training-loop additions: hooks, resumable checkpoints, CPU distributed setup."""
from .checkpointing import ResumableCheckpointHook, capture_rng_state, restore_rng_state
from .distributed import leave_process_group, setup_cpu_distributed
from .hooks import BNRecalibrationHook, NonFiniteLossHook, RecordInputConventionHook

__all__ = ['BNRecalibrationHook', 'NonFiniteLossHook', 'RecordInputConventionHook',
           'ResumableCheckpointHook', 'capture_rng_state', 'leave_process_group',
           'restore_rng_state', 'setup_cpu_distributed']
