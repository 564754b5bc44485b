"""shufflenet_det.images: every way an image path can be wrong gives one line naming it."""
import pickle

import cv2
import numpy as np
import pytest
import torch

from shufflenet_det.errors import InputError
from shufflenet_det.images import (ImageDecodeError, ImageFileError, ImageNotFoundError,
                                   decode_image, read_image)


@pytest.fixture
def png(tmp_path):
    path = tmp_path / 'image.png'
    pixels = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    cv2.imwrite(str(path), pixels)
    return path, pixels


def test_reads_what_opencv_reads(png):
    path, pixels = png
    assert np.array_equal(read_image(str(path)), pixels)
    assert np.array_equal(read_image(path), pixels)  # a pathlib.Path too


@pytest.mark.parametrize('case, error, message', [
    ('missing', ImageNotFoundError, 'image not found: {path}'),
    ('directory', ImageFileError, '{path} is a directory, not an image file'),
    ('empty', ImageDecodeError, 'cannot decode image {path}: the file is empty (0 bytes)'),
    ('text', ImageDecodeError, 'cannot decode image {path}: not an image, or truncated'),
])
def test_a_bad_path_is_one_line_naming_it(tmp_path, case, error, message):
    path = tmp_path / 'x.png'
    if case == 'directory':
        path.mkdir()
    elif case == 'empty':
        path.write_bytes(b'')
    elif case == 'text':
        path.write_text('not an image')
    with pytest.raises(error) as info:
        read_image(str(path))
    assert str(info.value) == message.format(path=path)
    assert isinstance(info.value, InputError)


def test_truncated_and_pillow_errors_name_the_file(png, tmp_path):
    path, _ = png
    data = path.read_bytes()
    with pytest.raises(ImageDecodeError, match=f'cannot decode image {path}'):
        decode_image(data[:len(data) // 3], str(path))
    with pytest.raises(ImageDecodeError,
                       match=f'cannot decode image {path}: UnidentifiedImageError') as info:
        decode_image(b'\x89PNG not really' * 20, str(path), backend='pillow')
    assert '\n' not in str(info.value)


class _Missing(torch.utils.data.Dataset):
    def __init__(self, path):
        self.path = path

    def __len__(self):
        return 1

    def __getitem__(self, index):
        return read_image(self.path)


@pytest.mark.parametrize('error, text', [
    (ImageNotFoundError, 'image not found: /data/x.png'),
    (ImageDecodeError, 'cannot decode image /data/x.png: the file is empty (0 bytes)'),
])
def test_the_message_stays_one_line_when_torch_reraises_it_from_a_worker(error, text):
    # What torch's ExceptionWrapper.reraise passes: the worker's traceback as the message.
    worker = (f'Caught {error.__name__} in DataLoader worker process 3.\nOriginal Traceback '
              f'(most recent call last):\n  File "x.py", line 1, in f\n    g()\n'
              f'shufflenet_det.images.{error.__name__}: {text}\n')
    assert str(error(worker)) == f'{text} (in DataLoader worker process 3)'
    assert str(error(text)) == text
    assert str(pickle.loads(pickle.dumps(error(text)))) == text


def test_a_missing_image_in_a_dataloader_worker_is_one_line(tmp_path):
    path = str(tmp_path / 'missing.png')
    loader = torch.utils.data.DataLoader(_Missing(path), num_workers=1, timeout=120)
    with pytest.raises(ImageNotFoundError) as info:
        next(iter(loader))
    assert str(info.value) == f'image not found: {path} (in DataLoader worker process 0)'
    info.value.__traceback__ = None  # let the loader's workers go now
