"""StrictLoadImageFromFile and the resize check: a bad image is one line naming it."""
import json
import re

import cv2
import numpy as np
import pytest
from mmcv.transforms import Compose
from mmdet.registry import DATASETS, TRANSFORMS

from shufflenet_det.datasets.image_loading import check_resize_keeps_pixels, keep_ratio_scales
from shufflenet_det.datasets.synthetic_shapes import CLASSES, generate_shapes_dataset
from shufflenet_det.images import ImageDecodeError, ImageFileError, ImageNotFoundError

PIPELINE = [dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(256, 256), keep_ratio=True),
            dict(type='LoadAnnotations', with_bbox=True), dict(type='PackDetInputs')]


@pytest.fixture
def shapes(tmp_path):
    generate_shapes_dataset(str(tmp_path), num_train=3, num_val=1, image_size=64)
    return tmp_path


def build(root, test_mode=False):
    return DATASETS.build(dict(
        type='ValidatedCocoDataset', data_root=str(root),
        ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
        metainfo=dict(classes=CLASSES), pipeline=PIPELINE, test_mode=test_mode))


def index_of(dataset, name):
    return next(i for i in range(len(dataset))
                if dataset.get_data_info(i)['img_path'].endswith(name))


@pytest.mark.parametrize('test_mode', [True, False])
def test_a_listed_image_missing_on_disk_names_the_file_and_its_id(shapes, test_mode):
    path = shapes / 'train' / '00002.png'
    path.unlink()
    dataset = build(shapes, test_mode)
    index = index_of(dataset, '00002.png')
    with pytest.raises(ImageNotFoundError) as info:
        dataset[index]
    image_id = dataset.get_data_info(index)['img_id']
    assert str(info.value) == f'image not found: {path} (image id {image_id})'


def test_a_directory_listed_as_an_image(shapes):
    path = shapes / 'train' / '00002.png'
    path.unlink()
    path.mkdir()
    dataset = build(shapes)
    with pytest.raises(ImageFileError, match=f'^{path} is a directory, not an image file'):
        dataset[index_of(dataset, '00002.png')]


def test_an_empty_image_file(shapes):
    path = shapes / 'train' / '00002.png'
    path.write_bytes(b'')
    dataset = build(shapes, test_mode=True)
    with pytest.raises(ImageDecodeError,
                       match=f'^cannot decode image {path}: the file is empty \\(0 bytes\\)$'):
        dataset[index_of(dataset, '00002.png')]


def test_ignore_empty_skips_only_a_missing_file(shapes):
    load = TRANSFORMS.build(dict(type='StrictLoadImageFromFile', ignore_empty=True))
    assert load(dict(img_path=str(shapes / 'train' / 'gone.png'))) is None
    (shapes / 'train' / 'folder.png').mkdir()
    with pytest.raises(ImageFileError, match='is a directory'):
        load(dict(img_path=str(shapes / 'train' / 'folder.png')))


def test_keep_ratio_scales_of_configs_and_built_transforms():
    configs = [dict(type='LoadImageFromFile'),
               dict(type='Resize', scale=(1000, 600), keep_ratio=True),
               dict(type='Resize', scale=512, keep_ratio=True),
               dict(type='Resize', scale=(64, 64), keep_ratio=False),
               dict(type='RandomResize', scale=(1000, 600), keep_ratio=True)]
    assert keep_ratio_scales(configs) == [(1000, 600), (512, 512)]
    built = Compose([dict(type='mmdet.Resize', scale=(1000, 600), keep_ratio=True)]).transforms
    assert keep_ratio_scales(built) == [(1000, 600)]


@pytest.mark.parametrize('width, height, fits', [
    (4000, 1, False), (1, 4000, False), (2001, 1, False), (1000, 1, True), (2000, 3, True)])
def test_an_image_the_resize_would_make_0_pixels_high_is_refused(width, height, fits):
    if fits:
        check_resize_keeps_pixels('x.png', width, height, [(1000, 600)])
        return
    with pytest.raises(ImageFileError, match=rf'^image x.png is {width}x{height} pixels '
                       r'\(width x height\): Resize to scale \(1000, 600\) with '
                       r'keep_ratio=True would make it \d+x\d+\.'):
        check_resize_keeps_pixels('x.png', width, height, [(1000, 600)])


def test_the_check_is_where_opencv_fails():
    """The 1x4000 image really fails in mmdet's Resize, and 3x2000 really goes through."""
    resize = Compose([dict(type='mmdet.Resize', scale=(1000, 600), keep_ratio=True)])
    assert resize(dict(img=np.zeros((3, 2000, 3), np.uint8)))['img'].shape[:2] == (2, 1000)
    with pytest.raises(cv2.error):
        resize(dict(img=np.zeros((1, 4000, 3), np.uint8)))
    with pytest.raises(ImageFileError, match='would make it 1000x0'):
        check_resize_keeps_pixels('x.png', 4000, 1, keep_ratio_scales(
            [dict(type='Resize', scale=(1000, 600), keep_ratio=True)]))


@pytest.mark.parametrize('test_mode', [True, False])
def test_a_dataset_with_such_an_image_fails_when_built(shapes, test_mode):
    ann_file = shapes / 'annotations' / 'instances_train.json'
    coco = json.loads(ann_file.read_text())
    coco['images'][1].update(width=4000, height=1)
    ann_file.write_text(json.dumps(coco))
    cv2.imwrite(str(shapes / 'train' / coco['images'][1]['file_name']),
                np.zeros((1, 4000, 3), np.uint8))
    path = re.escape(str(shapes / 'train' / coco['images'][1]['file_name']))
    with pytest.raises(ImageFileError, match=rf'^image {path} is 4000x1 pixels'):
        build(shapes, test_mode)


def test_the_datasets_own_images_still_load(shapes):
    dataset = build(shapes)
    assert [dataset[i]['inputs'].shape[-2:] for i in range(len(dataset))] == [(256, 256)] * 3
