"""Bad datasets, annotation files and images, through the real tools, as one table.

Each row (a :class:`.harness.Case`) changes a copy of a generated shapes dataset (3
training and 2 val images of 64 px) in one way, runs ``tools/train.py``, ``tools/test.py``
or ``tools/demo.py`` on it, and states the outcome: the error, the warning with its
count, or success.

Every row is cheap: training rows fail while the dataset is built or on the first batch
(before any iteration); the evaluation and demo rows run the demo detector with random
weights on two images. That labels follow the class names, whatever the order of a val
file's categories, is shown with the trained demo detector by the last test.
"""
import json
import shutil
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest

from ..helpers import LOADERS, REPO, save_random_demo_detector
from .harness import Case, check, run_tool, table

DEMO = str(REPO / 'configs/faster_rcnn_shufflenet_demo.py')
TRAIN_ANN = 'annotations/instances_train.json'
VAL_ANN = 'annotations/instances_val.json'
# The Runner's logger and visualizer are process-wide instances found by name, and keep
# the folders of the run that made them (mmdet names every visualizer 'visualizer'):
# one name per row, as each row is a process of its own for a user.
OPTIONS = ['--cfg-options', 'train_cfg.max_epochs=1', 'experiment_name={id}',
           'visualizer.name={id}']
TRAIN_WITH_WORKERS = [DEMO, '--work-dir', '{work}', '--data-root', '{root}', *OPTIONS]
TRAIN = [*TRAIN_WITH_WORKERS, *LOADERS]
TEST = [DEMO, '{checkpoint}', '--work-dir', '{work}', '--data-root', '{root}', *OPTIONS,
        *LOADERS]
DRAW = ['{val_image}', DEMO, '{checkpoint}', '--out-file', '{work}/drawn.png', '--score-thr', '0']


def _edit_json(name: str, change: Callable[[dict], None]) -> Callable[[dict], None]:
    def edit(p: dict) -> None:
        coco = json.loads((p['root'] / name).read_text())
        change(coco)
        (p['root'] / name).write_text(json.dumps(coco))
    return edit


def _write(name: str, content: bytes) -> Callable[[dict], None]:
    return lambda p: (p['root'] / name).write_bytes(content)


def _first_image(root: Path, split: str) -> str:
    """The first image file the split's annotation file lists."""
    coco = json.loads((root / f'annotations/instances_{split}.json').read_text())
    return str(root / split / coco['images'][0]['file_name'])


def _on_first_image(split: str, change: Callable[[Path], None]) -> Callable[[dict], None]:
    return lambda p: change(Path(p[f'{split}_image']))


def _replace_with_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _make_thin(p: dict) -> None:
    """The first val image becomes 4000x1 pixels, in the file and in the annotations."""
    cv2.imwrite(p['val_image'], np.full((1, 4000, 3), 128, np.uint8))
    _edit_json(VAL_ANN, lambda c: c['images'][0].update(width=4000, height=1))(p)


def _drop_star(coco: dict) -> None:
    star = next(c['id'] for c in coco['categories'] if c['name'] == 'star')
    coco['categories'] = [c for c in coco['categories'] if c['id'] != star]
    coco['annotations'] = [a for a in coco['annotations'] if a['category_id'] != star]


def _flatten_first_box(coco: dict) -> None:
    coco['annotations'][0]['bbox'][2] = 0


# ``{root}``: the dataset copy; ``{work}``: the work dir; ``{train_image}``, ``{val_image}``:
# the first image each split lists (id 1).
CASES = [
    # ------------------------------------------------------------------ annotation files
    Case('train-annotations-not-json', 'train', TRAIN, 2,
         '{root}/annotations/instances_train.json is not valid JSON: Expecting value at line 1',
         setup=_write(TRAIN_ANN, b'{"images": [')),
    Case('train-annotations-not-utf8', 'train', TRAIN, 2,
         'instances_train.json is not valid JSON', setup=_write(TRAIN_ANN, b'\xff\xfe\x00garbage')),
    Case('train-annotations-top-level-list', 'train', TRAIN, 2,
         'instances_train.json: the top level is a JSON list, not an object',
         setup=_write(TRAIN_ANN, b'[1, 2]')),
    Case('train-no-annotations-key', 'train', TRAIN, 2,
         "instances_train.json has no 'annotations' key",
         setup=_edit_json(TRAIN_ANN, lambda c: c.pop('annotations'))),
    Case('train-annotation-of-unknown-image', 'train', TRAIN, 2,
         'has image_id 99, which is not among the 3 ids in "images"',
         setup=_edit_json(TRAIN_ANN, lambda c: c['annotations'][0].update(image_id=99))),
    Case('train-annotation-of-unknown-category', 'train', TRAIN, 2,
         'has category_id 42, which is not among the category ids [1, 2, 3, 4, 5]',
         setup=_edit_json(TRAIN_ANN, lambda c: c['annotations'][0].update(category_id=42))),
    Case('train-box-of-three-numbers', 'train', TRAIN, 2,
         'has bbox [1, 2, 3]; expected 4 finite numbers [x, y, w, h]',
         setup=_edit_json(TRAIN_ANN, lambda c: c['annotations'][0].update(bbox=[1, 2, 3]))),
    Case('train-duplicated-annotation-id', 'train', TRAIN, 2, 'appears more than once',
         setup=_edit_json(TRAIN_ANN,
                          lambda c: c['annotations'][1].update(id=c['annotations'][0]['id']))),
    Case('train-empty-annotation-list', 'train', TRAIN, 2,
         'instances_train.json: its 3 images hold no box of the 5 classes (an empty or '
         'unmatched "annotations" list): there is nothing to train on',
         setup=_edit_json(TRAIN_ANN, lambda c: c.update(annotations=[]))),
    Case('train-no-images', 'train', TRAIN, 2,
         'instances_train.json lists no images: there is nothing to train on',
         setup=_edit_json(TRAIN_ANN, lambda c: c.update(images=[], annotations=[]))),
    Case('train-class-missing-from-categories', 'train', TRAIN, 2,
         "instances_train.json: no category is named 'star' (1 of the 5 class names in "
         'metainfo)', setup=_edit_json(TRAIN_ANN, _drop_star)),
    Case('test-empty-annotation-list', 'test', TEST, 2,
         '{root}/annotations/instances_val.json has no annotations (it lists 2 images): '
         'there is nothing to compute AP against',
         setup=_edit_json(VAL_ANN, lambda c: c.update(annotations=[]))),
    Case('test-annotations-not-json', 'test', TEST, 2, 'instances_val.json is not valid JSON',
         setup=_write(VAL_ANN, b'{')),
    Case('test-class-missing-from-categories', 'test', TEST, 2,
         "instances_val.json: no category is named 'star'", setup=_edit_json(VAL_ANN, _drop_star)),
    Case('test-box-without-width', 'test', TEST, 0,
         'instances_val.json: skipped 1 box(es) with non-positive width or height', warns=True,
         setup=_edit_json(VAL_ANN, _flatten_first_box)),
    Case('test-missing-data-root', 'test', TEST, 2, 'dataset not found',
         setup=lambda p: shutil.rmtree(p['root'])),
    # ------------------------------------------------------------------ images of a dataset
    Case('train-listed-image-missing', 'train', TRAIN_WITH_WORKERS, 2,
         'image not found: {train_image} (image id 1) (in DataLoader worker process 0)',
         setup=_on_first_image('train', Path.unlink)),
    Case('train-listed-image-undecodable', 'train', TRAIN, 2,
         'cannot decode image {train_image}: not an image, or truncated',
         setup=_on_first_image('train', lambda f: f.write_bytes(b'\x89PNG not really' * 20))),
    Case('train-listed-image-empty', 'train', TRAIN, 2,
         'cannot decode image {train_image}: the file is empty (0 bytes)',
         setup=_on_first_image('train', lambda f: f.write_bytes(b''))),
    Case('train-listed-image-is-a-folder', 'train', TRAIN, 2,
         '{train_image} is a directory, not an image file (image id 1)',
         setup=_on_first_image('train', _replace_with_folder)),
    # In training, filter_cfg.min_size (4 px in the demo, 32 in mmdet's COCO configs) leaves
    # such an image out before the pipeline sees it.
    Case('test-listed-image-1x4000', 'test', TEST, 2,
         'image {val_image} is 4000x1 pixels (width x height): Resize to scale (256, 256) with '
         'keep_ratio=True would make it 256x0', setup=_make_thin),
    Case('test-listed-image-missing', 'test', TEST, 2, 'image not found: {val_image}',
         setup=_on_first_image('val', Path.unlink)),
    Case('test-listed-image-truncated', 'test', TEST, 2, 'cannot decode image {val_image}',
         setup=_on_first_image('val', lambda f: f.write_bytes(f.read_bytes()[:200]))),
    # ------------------------------------------------------------------ images given to the demo
    Case('demo-image-empty', 'demo', DRAW, 2,
         'cannot decode image {val_image}: the file is empty (0 bytes)',
         setup=_on_first_image('val', lambda f: f.write_bytes(b''))),
    Case('demo-image-1x4000', 'demo', DRAW, 2,
         'image {val_image} is 4000x1 pixels (width x height): Resize to scale (256, 256) with '
         'keep_ratio=True would make it 256x0', setup=_make_thin),
    Case('demo-image-fine', 'demo', DRAW, 0,
         'detections with score >= 0.0 drawn to {work}/drawn.png'),
]


@pytest.fixture(scope='module')
def shapes(tmp_path_factory) -> Path:
    """The generated dataset every row copies (read-only)."""
    from shufflenet_det.datasets.synthetic_shapes import generate_shapes_dataset
    root = tmp_path_factory.mktemp('shapes')
    generate_shapes_dataset(str(root), num_train=3, num_val=2, image_size=64)
    return root


@pytest.fixture(scope='module')
def random_checkpoint(tmp_path_factory) -> str:
    """The demo detector with random weights."""
    return save_random_demo_detector(tmp_path_factory.mktemp('checkpoint'))


@table(CASES)
def test_bad_dataset(case: Case, shapes, random_checkpoint, tmp_path, request, capsys):
    root = tmp_path / 'data'
    shutil.copytree(shapes, root)
    check(case, dict(tmp=tmp_path, root=root, work=tmp_path / 'work', checkpoint=random_checkpoint,
                     train_image=_first_image(root, 'train'), val_image=_first_image(root, 'val')),
          request, capsys)


@pytest.mark.parametrize('how', ['reversed', 'renumbered'])
def test_val_categories_in_another_order_give_the_same_map(how, trained_demo_detector, tmp_path,
                                                          capsys):
    """The trained demo detector evaluated by tools/test.py on its val split, as generated and
    with the same categories listed in reverse (or numbered in reverse, as a labelling tool
    may export them): the same metrics. MMDetection's classes gave a lower mAP here. With two
    categories' names swapped, the metrics differ: the comparison sees labels, whatever the
    detector's quality on this CPU."""
    trained = trained_demo_detector
    metrics = {}
    for variant in ('original', how, 'names-swapped'):
        root = tmp_path / variant
        shutil.copytree(trained.data_root / 'val', root / 'val')
        coco = json.loads((trained.data_root / VAL_ANN).read_text())
        if variant == 'reversed':
            coco['categories'].reverse()
        elif variant == 'renumbered':
            new_id = {c['id']: len(coco['categories']) + 1 - c['id'] for c in coco['categories']}
            for item in coco['categories'] + coco['annotations']:
                key = 'id' if 'name' in item else 'category_id'
                item[key] = new_id[item[key]]
            coco['categories'].sort(key=lambda c: c['id'])
        elif variant == 'names-swapped':
            first, second = coco['categories'][:2]
            first['name'], second['name'] = second['name'], first['name']
        (root / 'annotations').mkdir()
        (root / VAL_ANN).write_text(json.dumps(coco))
        status, out, err = run_tool('test', [
            trained.config, str(trained.checkpoint), '--work-dir', str(root / 'work'),
            '--data-root', str(root), '--cfg-options', f'experiment_name=order-{how}-{variant}',
            f'visualizer.name=order-{how}-{variant}', *LOADERS], capsys)
        assert status == 0, err[-2000:]
        metrics[variant] = json.loads((root / 'work' / 'metrics.json').read_text())
    assert metrics[how] == metrics['original']
    assert metrics['names-swapped'] != metrics['original']
