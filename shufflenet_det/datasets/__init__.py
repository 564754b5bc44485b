from .coco import (AnnotationError, ImageDecodeError, StrictLoadImageFromFile, ValidatedCOCO,
                   ValidatedCocoDataset, read_image)
from .imagenet import ImageNetFolder, build_transforms
from .layout import DatasetLayoutError, check_dataset_paths, set_data_root

__all__ = ['AnnotationError', 'DatasetLayoutError', 'ImageDecodeError', 'ImageNetFolder',
           'StrictLoadImageFromFile', 'ValidatedCOCO', 'ValidatedCocoDataset', 'build_transforms',
           'check_dataset_paths', 'read_image', 'set_data_root']
