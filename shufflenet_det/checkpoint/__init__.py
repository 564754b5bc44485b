"""Checkpoint reading, strict loading, conversion and safe ``torch.load``."""
from .convert import convert_file
from .detector_init import ShuffleNetPretrainedInit, check_input_convention
from .detector_loading import load_detector
from .export import BACKBONE_PREFIX, export_backbone
from .files import (CheckpointFileError, UnsafeCheckpointError, atomic_save, checkpoint_exists,
                    load_checkpoint_file, read_checkpoint)
from .formats import ConversionError
from .megvii import MEGVII_INPUT_CONVENTION
from .openmmlab import OPENMMLAB_INPUT_CONVENTION
from .pretrained import (StrictPretrainedInit, check_shuffle_order, load_model_checkpoint,
                         load_parts, load_strict, select_prefix, shufflenet_modules)
from .safe_globals import allow_mmengine_checkpoints

__all__ = ['BACKBONE_PREFIX', 'MEGVII_INPUT_CONVENTION', 'OPENMMLAB_INPUT_CONVENTION',
           'CheckpointFileError', 'ConversionError', 'ShuffleNetPretrainedInit',
           'StrictPretrainedInit', 'UnsafeCheckpointError', 'allow_mmengine_checkpoints',
           'atomic_save', 'check_input_convention', 'check_shuffle_order', 'checkpoint_exists',
           'convert_file', 'export_backbone', 'load_checkpoint_file', 'load_detector',
           'load_model_checkpoint', 'load_parts', 'load_strict', 'read_checkpoint',
           'select_prefix', 'shufflenet_modules']
