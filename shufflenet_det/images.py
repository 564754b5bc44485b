"""Reading image files, with errors that name the file and say what is wrong with it.

mmcv 2.1 reads images with an ``assert img is not None`` (gone under ``python -O``), lets
an empty file fail inside OpenCV without its name, has the pillow backend fail without
the name either, and answers a directory or a missing file with the operating system's
bare error. The datasets' loader transform
(:class:`~shufflenet_det.datasets.StrictLoadImageFromFile`), the demo, the ONNX runtime
and the export all read images through this module instead:

* a missing file is an :class:`ImageNotFoundError` (a ``FileNotFoundError``);
* a directory, or a file that cannot be read, is an :class:`ImageFileError`;
* bytes that do not decode (empty, truncated, not an image) are an
  :class:`ImageDecodeError`.

All three are :class:`~shufflenet_det.errors.InputError`\\ s, which the tools print as
one line. They stay one line when raised in a ``DataLoader`` worker, which torch
re-raises in the main process with the worker's whole traceback as the message.
"""
import os
import os.path as osp
import re
from typing import Optional

import mmcv
import numpy as np

from .errors import InputError, InputFileNotFoundError

#: The image files looked for in a folder, as torchvision's ``IMG_EXTENSIONS`` and
#: MMDetection's ``DetInferencer`` list them.
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')

# How torch's ExceptionWrapper.reraise words an exception from a DataLoader worker.
_WORKER_MESSAGE = re.compile(r'Caught \w+ (in DataLoader worker process \d+)\.\n'
                             r'Original Traceback')


class _OneLineFromWorkers:
    """Keeps the original one-line message when torch re-raises the error from a worker."""

    def __init__(self, *args):
        if len(args) == 1 and isinstance(args[0], str):
            worker = _WORKER_MESSAGE.match(args[0])
            if worker:
                # The traceback's last line is "module.ClassName: original message".
                original = args[0].rstrip().splitlines()[-1].partition(': ')[2]
                args = (f'{original} ({worker.group(1)})',)
        super().__init__(*args)


class ImageNotFoundError(_OneLineFromWorkers, InputFileNotFoundError):
    """An image file that does not exist: the message names it."""


class ImageFileError(_OneLineFromWorkers, InputError, ValueError):
    """A path that does not hold a readable image (a directory, an unreadable file)."""


class ImageDecodeError(ImageFileError):
    """An image file whose bytes are not a decodable image: the message names the file."""


def image_read_error(path: str, exc: OSError, detail: str = '') -> InputError:
    """The error that names ``path`` for ``exc``, raised while reading its bytes.

    Args:
        path (str): the image path.
        exc (OSError): what reading it raised.
        detail (str): appended to the message, e.g. ``' (image id 7)'``.

    Returns:
        InputError: an :class:`ImageNotFoundError` or an :class:`ImageFileError`.
    """
    if isinstance(exc, IsADirectoryError) or osp.isdir(path):
        return ImageFileError(f'{path} is a directory, not an image file{detail}')
    if isinstance(exc, FileNotFoundError):
        return ImageNotFoundError(f'image not found: {path}{detail}')
    return ImageFileError(f'cannot read image {path}{detail}: {exc.strerror or exc}')


def read_image_bytes(path: str) -> bytes:
    """The bytes of the local image file ``path``.

    Raises:
        ImageNotFoundError: ``path`` does not exist.
        ImageFileError: ``path`` is a directory or cannot be read.
    """
    try:
        with open(path, 'rb') as f:
            return f.read()
    except OSError as exc:
        raise image_read_error(path, exc) from exc


def decode_image(data: bytes, path: str, flag: str = 'color',
                 backend: Optional[str] = None) -> np.ndarray:
    """Decode an image file's bytes as ``mmcv.imfrombytes`` does, or fail naming the file.

    Args:
        data (bytes): the file's content.
        path (str): the file's name, for the messages.
        flag (str): mmcv's colour flag (``'color'``, ``'grayscale'``, ...).
        backend (str, optional): mmcv's decoding backend (``'cv2'``, ``'pillow'``, ...).

    Returns:
        np.ndarray: the image (BGR for colour images, as mmcv reads them).

    Raises:
        ImageDecodeError: ``data`` is empty or is not a decodable image.
    """
    if not data:
        raise ImageDecodeError(f'cannot decode image {path}: the file is empty (0 bytes)')
    try:
        image = mmcv.imfrombytes(data, flag=flag, backend=backend)
    except Exception as exc:  # each backend has its own error types
        detail = ' '.join(str(exc).split())  # OpenCV's messages span lines
        raise ImageDecodeError(
            f'cannot decode image {path}: {type(exc).__name__}: {detail}') from exc
    if image is None or image.size == 0:
        raise ImageDecodeError(f'cannot decode image {path}: not an image, or truncated')
    return image


def read_image(path: str | os.PathLike) -> np.ndarray:
    """The BGR image at ``path``, as the detection pipelines load it.

    Raises:
        ImageNotFoundError: ``path`` does not exist.
        ImageFileError: ``path`` is a directory or cannot be read.
        ImageDecodeError: the file is empty or not a decodable image.
    """
    path = os.fspath(path)
    return decode_image(read_image_bytes(path), path)
