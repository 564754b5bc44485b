from .imagenet import ImageNetFolder, build_transforms
from .layout import DatasetLayoutError, check_dataset_paths, set_data_root

__all__ = ['DatasetLayoutError', 'ImageNetFolder', 'build_transforms', 'check_dataset_paths',
           'set_data_root']
