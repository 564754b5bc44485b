"""Image loading transforms that fail naming the file, and the check for a 0-pixel resize.

Both transforms are registered under names of their own: mmdet's ``LoadImageFromFile``
and ``InferencerLoader`` stay mmdet's, and :func:`strict_image_loading` swaps them in.
"""
import copy
import logging
from typing import Optional

import mmcv
from mmcv.transforms import LoadImageFromFile, Resize
from mmdet.datasets.transforms import InferencerLoader
from mmdet.registry import TRANSFORMS
from mmengine import fileio
from mmengine.logging import print_log

from ..images import ImageFileError, decode_image, image_read_error


@TRANSFORMS.register_module()
class StrictLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` whose errors name the image, also under ``python -O``.

    A missing file raises ``ImageNotFoundError`` (``ignore_empty=True`` skips it with a
    warning); a directory, ``ImageFileError``; undecodable bytes always raise
    ``ImageDecodeError``, where mmcv would return ``None`` and the dataset silently
    fetch another image.
    """

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        try:
            if self.file_client_args is not None:
                img_bytes = fileio.FileClient.infer_client(
                    self.file_client_args, filename).get(filename)
            else:
                img_bytes = fileio.get(filename, backend_args=self.backend_args)
        except OSError as exc:
            if self.ignore_empty and isinstance(exc, FileNotFoundError):
                print_log(f'skipping unreadable image {filename} (ignore_empty=True): {exc}',
                          logger='current', level=logging.WARNING)
                return None
            listed = f' (image id {results["img_id"]!r})' if 'img_id' in results else ''
            raise image_read_error(filename, exc, listed) from exc
        img = decode_image(img_bytes, filename, self.color_type, self.imdecode_backend)
        results['img'] = img.astype('float32') if self.to_float32 else img
        results['img_shape'] = results['ori_shape'] = img.shape[:2]
        return results


@TRANSFORMS.register_module()
class StrictInferencerLoader(InferencerLoader):
    """mmdet's ``InferencerLoader`` reading files with :class:`StrictLoadImageFromFile`."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.from_file = StrictLoadImageFromFile(**kwargs)


_STRICT = {LoadImageFromFile: StrictLoadImageFromFile, InferencerLoader: StrictInferencerLoader}
_STRICT.update({f'{scope}{cls.__name__}': strict for cls, strict in _STRICT.items()
                for scope in ('', 'mmcv.', 'mmdet.')})


def strict_image_loading(transform):
    """``transform`` (a config or a built transform) with the strict loader in place of
    mmcv's ``LoadImageFromFile`` or mmdet's ``InferencerLoader``; others unchanged."""
    if isinstance(transform, dict):
        strict = _STRICT.get(transform.get('type'))
        return {**transform, 'type': strict} if strict else transform
    strict = _STRICT.get(type(transform))
    if strict is None:
        return transform
    transform = copy.copy(transform)
    transform.__class__ = strict
    if strict is StrictInferencerLoader:
        transform.from_file = strict_image_loading(transform.from_file)
    return transform


def keep_ratio_scales(pipeline) -> list[tuple[int, int]]:
    """The fixed scales of the ``Resize(keep_ratio=True)`` steps of ``pipeline`` (configs
    or built transforms)."""
    scales = []
    for t in pipeline:
        if isinstance(t, dict) and t.get('type') in ('Resize', 'mmdet.Resize', 'mmcv.Resize'):
            scale, keep = t.get('scale'), t.get('keep_ratio')
        elif isinstance(t, Resize):
            scale, keep = t.scale, t.keep_ratio
        else:
            continue
        if keep and scale is not None:
            scales.append((scale, scale) if isinstance(scale, int) else tuple(scale))
    return scales


def check_resize_keeps_pixels(path: str, width: int, height: int, scales) -> None:
    """Refuse an image that a keep-ratio resize to one of ``scales`` would make 0 px on a
    side, where OpenCV fails naming neither the image nor its size.

    Raises:
        ImageFileError: naming the image, its size, the scale and the resized size.
    """
    for scale in scales:
        new_width, new_height = mmcv.rescale_size((width, height), scale)
        if min(new_width, new_height) < 1:
            raise ImageFileError(
                f'image {path} is {width}x{height} pixels (width x height): Resize to '
                f'scale {scale} with keep_ratio=True would make it {new_width}x{new_height}. '
                f'An image this elongated cannot be detected on; crop it or leave it out')
