"""Checkpoint reading, strict loading, conversion and safe ``torch.load``."""
from .detector_init import ShuffleNetPretrainedInit, check_input_convention
from .export import export_backbone
from .io import atomic_save
from .megvii import MEGVII_INPUT_CONVENTION, OPENMMLAB_INPUT_CONVENTION
from .pretrained import load_parts, load_strict, read_checkpoint
from .safe_globals import allow_mmengine_checkpoints

__all__ = ['MEGVII_INPUT_CONVENTION', 'OPENMMLAB_INPUT_CONVENTION', 'ShuffleNetPretrainedInit',
           'allow_mmengine_checkpoints', 'atomic_save', 'export_backbone', 'check_input_convention', 'load_parts',
           'load_strict', 'read_checkpoint']
