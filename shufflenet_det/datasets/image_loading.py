"""Loading images into the detection pipelines, failing with the file's name.

* :class:`StrictLoadImageFromFile`: mmcv's ``LoadImageFromFile`` with the errors of
  :mod:`shufflenet_det.images` (missing file, directory, empty or undecodable bytes),
  in the main process and in DataLoader workers alike, with or without ``-O``;
* :func:`strict_image_loading`: swaps it in for mmcv's loader in a pipeline, which the
  configs keep by name because MMDetection's ``DetInferencer`` looks for that name, and
  :class:`StrictInferencerLoader` in for mmdet's ``InferencerLoader``, the step
  ``DetInferencer`` puts in that place
  (:class:`~shufflenet_det.apis.StrictDetInferencer` does so). Both are registered under
  their own names: mmdet's ``LoadImageFromFile`` and ``InferencerLoader`` stay mmdet's;
* :func:`check_resize_keeps_pixels`: an image so elongated that ``Resize`` with
  ``keep_ratio=True`` would make one side 0 pixels (a 1x4000 image at scale
  (1000, 600)) is an error naming it, where OpenCV's ``resize`` fails without a name.
"""
import logging
from collections.abc import Sequence
from typing import Optional

import mmcv
from mmcv.transforms import LoadImageFromFile, Resize
from mmdet.datasets.transforms import InferencerLoader
from mmdet.registry import TRANSFORMS
from mmengine import fileio
from mmengine.logging import print_log

from ..images import ImageFileError, decode_image, image_read_error

_PLAIN_LOADERS = ('LoadImageFromFile', 'mmcv.LoadImageFromFile', LoadImageFromFile)
_PLAIN_INFERENCER_LOADERS = ('InferencerLoader', 'mmdet.InferencerLoader', InferencerLoader)
_RESIZES = ('Resize', 'mmdet.Resize', 'mmcv.Resize')


@TRANSFORMS.register_module()
class StrictLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` whose errors name the image and say what is wrong with it.

    mmcv 2.1's transform relies on ``assert img is not None`` (gone under ``python -O``),
    lets an empty file fail inside OpenCV and the pillow backend fail without the
    file's name, and with ``ignore_empty=True`` turns a decoding error into ``None``,
    which MMEngine's ``BaseDataset`` answers in training by silently fetching another
    index. Here:

    * a missing file raises :class:`~shufflenet_det.images.ImageNotFoundError`
      (``image not found: PATH (image id N)``); with ``ignore_empty=True`` it is
      skipped instead, each skip logged as a warning;
    * a directory raises :class:`~shufflenet_det.images.ImageFileError`;
    * bytes that do not decode always raise
      :class:`~shufflenet_det.images.ImageDecodeError` (``cannot decode image PATH:
      ...``, a ``ValueError``), ``ignore_empty`` or not.

    Args: as :class:`mmcv.transforms.LoadImageFromFile`.
    """

    def transform(self, results: dict) -> Optional[dict]:
        """Read and decode ``results['img_path']``.

        Args:
            results (dict): with ``img_path`` (and, from a dataset, ``img_id``).

        Returns:
            dict | None: ``results`` with ``img``, ``img_shape`` and ``ori_shape``;
            ``None`` only for a missing file with ``ignore_empty=True``.
        """
        filename = results['img_path']
        try:
            if self.file_client_args is not None:
                file_client = fileio.FileClient.infer_client(self.file_client_args, filename)
                img_bytes = file_client.get(filename)
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
        if self.to_float32:
            img = img.astype('float32')
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results


@TRANSFORMS.register_module()
class StrictInferencerLoader(InferencerLoader):
    """mmdet's ``InferencerLoader`` reading files with :class:`StrictLoadImageFromFile`.

    ``DetInferencer`` replaces a config's ``LoadImageFromFile`` step with
    ``InferencerLoader``, whose file loader is mmcv's: an empty or broken image fails
    inside OpenCV without the file's name. Arrays load as in mmdet.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.from_file = StrictLoadImageFromFile(**kwargs)


def strict_image_loading(transform):
    """``transform`` with mmcv's ``LoadImageFromFile`` replaced by :class:`StrictLoadImageFromFile`
    and mmdet's ``InferencerLoader`` by :class:`StrictInferencerLoader`.

    Accepts a transform config (``type`` given as a name or as the class) or a built
    transform; anything else is returned unchanged.
    """
    if isinstance(transform, dict) and transform.get('type') in _PLAIN_LOADERS:
        return {**transform, 'type': StrictLoadImageFromFile}
    if isinstance(transform, dict) and transform.get('type') in _PLAIN_INFERENCER_LOADERS:
        return {**transform, 'type': StrictInferencerLoader}
    if type(transform) is LoadImageFromFile:
        strict = StrictLoadImageFromFile.__new__(StrictLoadImageFromFile)
        strict.__dict__.update(transform.__dict__)
        return strict
    if type(transform) is InferencerLoader:
        strict = StrictInferencerLoader.__new__(StrictInferencerLoader)
        strict.__dict__.update(transform.__dict__, from_file=strict_image_loading(
            transform.from_file))
        return strict
    return transform


def keep_ratio_scales(pipeline: Sequence) -> list[tuple[int, int]]:
    """The scales of the ``Resize(keep_ratio=True)`` steps of ``pipeline``.

    Args:
        pipeline (Sequence): transform configs, or built transforms (a ``Compose``'s
            ``transforms``). Resizes with a random scale are not looked at.
    """
    scales = []
    for t in pipeline:
        if isinstance(t, dict):
            scale, keep = (t.get('scale'), t.get('keep_ratio')) if t.get('type') in _RESIZES \
                else (None, False)
        else:
            scale, keep = (t.scale, t.keep_ratio) if isinstance(t, Resize) else (None, False)
        if keep and scale is not None:
            scales.append((scale, scale) if isinstance(scale, int) else tuple(scale))
    return scales


def check_resize_keeps_pixels(path: str, width: int, height: int,
                              scales: Sequence[tuple[int, int]]) -> None:
    """Refuse an image that a keep-ratio ``Resize`` to ``scales`` would make 0 px on a side.

    ``mmcv.rescale_size`` rounds each side; a side that rounds to 0 makes OpenCV's
    ``resize`` fail with an assertion that names neither the image nor its size.

    Args:
        path (str): the image, for the message.
        width (int): its width in pixels.
        height (int): its height in pixels.
        scales (Sequence[tuple[int, int]]): from :func:`keep_ratio_scales`.

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


def check_image_fits_pipeline(path: str, image, pipeline: Sequence) -> None:
    """:func:`check_resize_keeps_pixels` for the pixels ``image`` (HxW...) and ``pipeline``."""
    check_resize_keeps_pixels(path, image.shape[1], image.shape[0], keep_ratio_scales(pipeline))
