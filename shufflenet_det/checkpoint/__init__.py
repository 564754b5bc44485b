"""Checkpoint reading, strict loading, conversion and safe ``torch.load``."""
from .detector_init import ShuffleNetPretrainedInit, check_input_convention
from .export import export_backbone
from .io import CheckpointFileError, UnsafeCheckpointError, atomic_save, load_checkpoint_file
from .megvii import MEGVII_INPUT_CONVENTION, OPENMMLAB_INPUT_CONVENTION
from .pretrained import load_parts, load_strict, read_checkpoint
from .safe_globals import allow_mmengine_checkpoints

__all__ = ['MEGVII_INPUT_CONVENTION', 'OPENMMLAB_INPUT_CONVENTION', 'CheckpointFileError',
           'ShuffleNetPretrainedInit', 'UnsafeCheckpointError', 'allow_mmengine_checkpoints',
           'atomic_save', 'check_input_convention', 'export_backbone', 'load_checkpoint_file',
           'load_parts', 'load_strict', 'read_checkpoint']
