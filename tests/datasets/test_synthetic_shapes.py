import json

import numpy as np
import pytest

from shufflenet_det.datasets.synthetic_shapes import (CLASSES, MAX_HIDDEN, draw_image,
                                                      generate_shapes_dataset)


def test_generation_is_deterministic(tmp_path):
    a = generate_shapes_dataset(str(tmp_path / 'a'), num_train=6, num_val=3, seed=7)
    b = generate_shapes_dataset(str(tmp_path / 'b'), num_train=6, num_val=3, seed=7)
    c = generate_shapes_dataset(str(tmp_path / 'c'), num_train=6, num_val=3, seed=8)
    for split in ('train', 'val'):
        assert json.load(open(a[split])) == json.load(open(b[split]))
        assert json.load(open(a[split])) != json.load(open(c[split]))
        for i in range(3):
            name = f'{split}/{i:05d}.png'
            assert (tmp_path / 'a' / name).read_bytes() == (tmp_path / 'b' / name).read_bytes()


def test_annotations_are_valid_coco(tmp_path):
    files = generate_shapes_dataset(str(tmp_path), num_train=30, num_val=5, image_size=128)
    coco = json.load(open(files['train']))
    assert [c['name'] for c in coco['categories']] == list(CLASSES)
    assert len(coco['images']) == 30
    per_image = {}
    for ann in coco['annotations']:
        x, y, w, h = ann['bbox']
        assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= 128 and y + h <= 128
        assert 0 < ann['area'] <= w * h and ann['iscrowd'] == 0
        per_image[ann['image_id']] = per_image.get(ann['image_id'], 0) + 1
    assert min(per_image.values()) >= 1 and max(per_image.values()) <= 6
    assert {a['category_id'] for a in coco['annotations']} == set(range(1, len(CLASSES) + 1))


def test_objects_vary_and_stay_mostly_visible():
    rng = np.random.default_rng(3)
    sizes, colours = [], []
    for _ in range(20):
        img, objects = draw_image(rng, 128)
        for obj in objects:
            x, y, w, h = obj['bbox']
            sizes.append(max(w, h))
            colours.append(tuple(img[y + h // 2, x + w // 2]))
    assert max(sizes) > 2.5 * min(sizes)
    assert len(set(colours)) > len(colours) // 2
    assert MAX_HIDDEN <= 0.5


def test_unknown_split_is_rejected(tmp_path):
    from shufflenet_det.datasets.synthetic_shapes import generate_split
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'val'\), got 'test'"):
        generate_split(str(tmp_path), 'test', 1)
