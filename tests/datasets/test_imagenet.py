import numpy as np
import pytest
import torch
from PIL import Image

from shufflenet_det.datasets import ImageNetFolder, build_transforms


def make_folder(root, classes=('n001', 'n002'), per_class=3, size=(40, 30)):
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.full((size[1], size[0], 3), 60 * k + i, np.uint8)
            Image.fromarray(pixels).save(root / name / f'{i}.JPEG')
    return root


def test_samples_are_uint8_tensors_and_labels(tmp_path):
    make_folder(tmp_path / 'train')
    ds = ImageNetFolder(str(tmp_path), dict(img='train/'),
                        [dict(type='Resize', size=32), dict(type='CenterCrop', size=24)])
    assert len(ds) == 6 and ds.metainfo['classes'] == ('n001', 'n002')
    image, label = ds[4]
    assert image.dtype == torch.uint8 and image.shape == (3, 24, 24) and label == 1
    # Resize(32) scales the shorter side: 30 -> 32, so 40 -> 43 before the centre crop.
    assert int(image[0, 0, 0]) == 61


def test_missing_split_and_empty_class_folder_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'image folder not found: .*/val/ \(expected one '
                                                r'sub-folder of images per class'):
        ImageNetFolder(str(tmp_path), dict(img='val/'), [])
    make_folder(tmp_path / 'train')
    (tmp_path / 'train' / 'n003').mkdir()
    with pytest.raises(FileNotFoundError, match=r'class folder .*/train/n003 has no images'):
        ImageNetFolder(str(tmp_path), dict(img='train/'), [])
    with pytest.raises(FileNotFoundError, match=r'has no class folders'):
        (tmp_path / 'empty').mkdir()
        ImageNetFolder(str(tmp_path), dict(img='empty/'), [])


def test_expected_classes_are_checked(tmp_path):
    make_folder(tmp_path / 'val')
    with pytest.raises(ValueError, match=r"missing \['n009'\], unexpected \['n002'\]"):
        ImageNetFolder(str(tmp_path), dict(img='val/'), [], classes=['n001', 'n009'])


def test_unknown_transform_is_rejected():
    with pytest.raises(ValueError, match="'RandomSizedCrop' is not a torchvision.transforms.v2"):
        build_transforms([dict(type='RandomSizedCrop', size=224)])
