"""Reading image files, with one-line errors that name the file and what is wrong with it.

mmcv 2.1 relies on ``assert img is not None`` (gone under ``python -O``), and an empty
file or the pillow backend fails without the file's name.
"""
import os
import os.path as osp
import re
from typing import Optional

import mmcv
import numpy as np

from .errors import InputError, InputFileNotFoundError

#: Image files looked for in a folder, as torchvision and mmdet's ``DetInferencer`` list them.
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')

# How torch's ExceptionWrapper.reraise words an exception from a DataLoader worker.
_WORKER_MESSAGE = re.compile(r'Caught \w+ (in DataLoader worker process \d+)\.\n'
                             r'Original Traceback')


class _OneLineFromWorkers:
    """Keeps the one-line message when torch re-raises the error from a DataLoader worker
    with the worker's traceback as the message."""

    def __init__(self, *args):
        worker = len(args) == 1 and isinstance(args[0], str) and _WORKER_MESSAGE.match(args[0])
        if worker:
            # The traceback's last line is "module.ClassName: original message".
            original = args[0].rstrip().splitlines()[-1].partition(': ')[2]
            args = (f'{original} ({worker.group(1)})',)
        super().__init__(*args)


class ImageNotFoundError(_OneLineFromWorkers, InputFileNotFoundError):
    """An image file that does not exist."""


class ImageFileError(_OneLineFromWorkers, InputError, ValueError):
    """A path that does not hold a readable image (a directory, an unreadable file)."""


class ImageDecodeError(ImageFileError):
    """An image file whose bytes do not decode (empty, truncated, not an image)."""


def image_read_error(path: str, exc: OSError, detail: str = '') -> InputError:
    """The error naming ``path`` for ``exc`` raised reading it; ``detail`` is appended."""
    if isinstance(exc, IsADirectoryError) or osp.isdir(path):
        return ImageFileError(f'{path} is a directory, not an image file{detail}')
    if isinstance(exc, FileNotFoundError):
        return ImageNotFoundError(f'image not found: {path}{detail}')
    return ImageFileError(f'cannot read image {path}{detail}: {exc.strerror or exc}')


def decode_image(data: bytes, path: str, flag: str = 'color',
                 backend: Optional[str] = None) -> np.ndarray:
    """``mmcv.imfrombytes(data, flag, backend)``, or an :class:`ImageDecodeError` naming ``path``."""
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
        ImageNotFoundError, ImageFileError, ImageDecodeError: naming ``path``.
    """
    path = os.fspath(path)
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as exc:
        raise image_read_error(path, exc) from exc
    return decode_image(data, path)
