from ..images import ImageDecodeError, ImageFileError, ImageNotFoundError, read_image
from .coco import AnnotationError, ValidatedCOCO, ValidatedCocoDataset
from .image_loading import StrictLoadImageFromFile
from .imagenet import ImageNetFolder, build_transforms
from .layout import DatasetLayoutError, check_dataset_paths, set_data_root

__all__ = ['AnnotationError', 'DatasetLayoutError', 'ImageDecodeError', 'ImageFileError',
           'ImageNetFolder', 'ImageNotFoundError', 'StrictLoadImageFromFile', 'ValidatedCOCO',
           'ValidatedCocoDataset', 'build_transforms', 'check_dataset_paths', 'read_image',
           'set_data_root']
