"""Checkpoints: reading files safely (``files``, ``digest``), loading weights strictly
(``loading``), converting the public formats (``convert``, ``megvii``), and initialising
models from ImageNet weights (``pretrained``)."""
from .convert import (BACKBONE_PREFIX, OPENMMLAB_INPUT_CONVENTION, ConversionError,
                      convert_file, export_backbone)
from .digest import DIGEST_KEY, record_tensor_digest
from .files import (ZIP_MAGIC, CheckpointFileError, UnsafeCheckpointError,
                    allow_mmengine_checkpoints, atomic_save, checkpoint_exists,
                    load_checkpoint_file, mmengine_loads_safely, read_checkpoint, safe_torch_load)
from .loading import (check_checkpoint_fits_model, check_shuffle_order, load_detector,
                      load_model_checkpoint, load_parts, load_strict, select_prefix,
                      shufflenet_modules, state_shapes)
from .megvii import MEGVII_INPUT_CONVENTION
from .pretrained import (ShuffleNetPretrainedInit, StrictPretrainedInit, check_input_convention,
                         check_pretrained_files, configure_training_from_scratch)

__all__ = ['BACKBONE_PREFIX', 'DIGEST_KEY', 'MEGVII_INPUT_CONVENTION', 'ZIP_MAGIC',
           'OPENMMLAB_INPUT_CONVENTION', 'CheckpointFileError', 'ConversionError',
           'ShuffleNetPretrainedInit', 'StrictPretrainedInit', 'UnsafeCheckpointError',
           'allow_mmengine_checkpoints', 'atomic_save', 'check_checkpoint_fits_model',
           'check_input_convention', 'check_pretrained_files', 'check_shuffle_order',
           'checkpoint_exists', 'configure_training_from_scratch', 'convert_file',
           'export_backbone', 'load_checkpoint_file', 'load_detector', 'load_model_checkpoint',
           'load_parts', 'load_strict', 'mmengine_loads_safely', 'read_checkpoint',
           'record_tensor_digest', 'safe_torch_load', 'select_prefix', 'shufflenet_modules',
           'state_shapes']
