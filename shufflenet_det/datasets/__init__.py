from .coco import (AnnotationError, StrictLoadImageFromFile, ValidatedCOCO,
                   ValidatedCocoDataset)
from .imagenet import ImageNetFolder, build_transforms
from .layout import DatasetLayoutError, check_dataset_paths, set_data_root

__all__ = ['AnnotationError', 'DatasetLayoutError', 'ImageNetFolder', 'StrictLoadImageFromFile',
           'ValidatedCOCO', 'ValidatedCocoDataset', 'build_transforms', 'check_dataset_paths',
           'set_data_root']
