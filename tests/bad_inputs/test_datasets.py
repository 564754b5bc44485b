"""Bad datasets, annotation files and images, through the real tools, as one table.

Each row changes a copy of a generated shapes dataset (3 training and 2 val images of
64 px) in one way, runs ``tools/train.py``, ``tools/test.py`` or ``tools/demo.py`` on it,
and states the outcome:

* ``EXIT2``: exit status 2 and one line ``error: ...`` containing the expected text
  (``|`` between several), without a traceback;
* ``WARNS``: exit status 0 and the warning, with its count, in the log;
* ``OK``: exit status 0.

Every row is cheap: training rows fail while the dataset is built or on the first batch
(before any iteration); the evaluation and demo rows run the demo detector with random
weights on two images. That labels follow the class names, whatever the order of a val
file's categories, is shown with the trained demo detector by the last test.
"""
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest

from ..helpers import REPO, load_tool, mmengine_console_to_stdout, save_random_demo_detector

DEMO = str(REPO / 'configs/faster_rcnn_shufflenet_demo.py')
EXIT2, WARNS, OK = 'exit 2', 'warns', 'ok'
NO_WORKERS = [f'{split}_dataloader.{key}' for split in ('train', 'val', 'test')
              for key in ('num_workers=0', 'persistent_workers=False')]
TRAIN_ANN = 'annotations/instances_train.json'
VAL_ANN = 'annotations/instances_val.json'


def _edit_json(name: str, change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        coco = json.loads((root / name).read_text())
        change(coco)
        (root / name).write_text(json.dumps(coco))
    return edit


def _write(name: str, content: bytes) -> Callable[[Path], None]:
    return lambda root: (root / name).write_bytes(content)


def _first_image(split: str) -> Callable[[Path], str]:
    """The first image file the split's annotation file lists."""
    def path(root: Path) -> str:
        coco = json.loads((root / f'annotations/instances_{split}.json').read_text())
        return str(root / split / coco['images'][0]['file_name'])
    return path


def _on_first_image(split: str, change: Callable[[Path], None]) -> Callable[[Path], None]:
    return lambda root: change(Path(_first_image(split)(root)))


def _replace_with_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _make_thin(split: str) -> Callable[[Path], None]:
    """The first image becomes 4000x1 pixels, in the file and in the annotations."""
    def change(root: Path) -> None:
        cv2.imwrite(_first_image(split)(root), np.full((1, 4000, 3), 128, np.uint8))
        _edit_json(f'annotations/instances_{split}.json',
                   lambda c: c['images'][0].update(width=4000, height=1))(root)
    return change


def _drop_star(coco: dict) -> None:
    star = next(c['id'] for c in coco['categories'] if c['name'] == 'star')
    coco['categories'] = [c for c in coco['categories'] if c['id'] != star]
    coco['annotations'] = [a for a in coco['annotations'] if a['category_id'] != star]


def _flatten_first_box(coco: dict) -> None:
    coco['annotations'][0]['bbox'][2] = 0


@dataclass(frozen=True)
class Case:
    id: str
    tool: str            # 'train', 'test' or 'demo'
    change: Callable     # applied to the dataset copy's root
    outcome: str
    expect: str  # '{root}', '{work}' and '{image}' (the first image listed; id 1) filled in
    workers: bool = False  # keep the config's DataLoader worker processes
    image_split: str = 'train'


CASES = [
    # ------------------------------------------------------------------ annotation files
    Case('train-annotations-not-json', 'train', _write(TRAIN_ANN, b'{"images": ['), EXIT2,
         '{root}/annotations/instances_train.json is not valid JSON: Expecting value at line 1'),
    Case('train-annotations-not-utf8', 'train', _write(TRAIN_ANN, b'\xff\xfe\x00garbage'), EXIT2,
         'instances_train.json is not valid JSON'),
    Case('train-annotations-top-level-list', 'train', _write(TRAIN_ANN, b'[1, 2]'), EXIT2,
         'instances_train.json: the top level is a JSON list, not an object'),
    Case('train-no-annotations-key', 'train',
         _edit_json(TRAIN_ANN, lambda c: c.pop('annotations')), EXIT2,
         "instances_train.json has no 'annotations' key"),
    Case('train-annotation-of-unknown-image', 'train',
         _edit_json(TRAIN_ANN, lambda c: c['annotations'][0].update(image_id=99)), EXIT2,
         'has image_id 99, which is not among the 3 ids in "images"'),
    Case('train-annotation-of-unknown-category', 'train',
         _edit_json(TRAIN_ANN, lambda c: c['annotations'][0].update(category_id=42)), EXIT2,
         'has category_id 42, which is not among the category ids [1, 2, 3, 4, 5]'),
    Case('train-box-of-three-numbers', 'train',
         _edit_json(TRAIN_ANN, lambda c: c['annotations'][0].update(bbox=[1, 2, 3])), EXIT2,
         'has bbox [1, 2, 3]; expected 4 finite numbers [x, y, w, h]'),
    Case('train-duplicated-annotation-id', 'train',
         _edit_json(TRAIN_ANN, lambda c: c['annotations'][1].update(id=c['annotations'][0]['id'])),
         EXIT2, 'appears more than once'),
    Case('train-empty-annotation-list', 'train',
         _edit_json(TRAIN_ANN, lambda c: c.update(annotations=[])), EXIT2,
         'instances_train.json: its 3 images hold no box of the 5 classes (an empty or '
         'unmatched "annotations" list): there is nothing to train on'),
    Case('train-no-images', 'train',
         _edit_json(TRAIN_ANN, lambda c: c.update(images=[], annotations=[])), EXIT2,
         'instances_train.json lists no images: there is nothing to train on'),
    Case('train-class-missing-from-categories', 'train', _edit_json(TRAIN_ANN, _drop_star),
         EXIT2, "instances_train.json: no category is named 'star' (1 of the 5 class names in "
         'metainfo)'),
    Case('test-empty-annotation-list', 'test',
         _edit_json(VAL_ANN, lambda c: c.update(annotations=[])), EXIT2,
         '{root}/annotations/instances_val.json has no annotations (it lists 2 images): '
         'there is nothing to compute AP against'),
    Case('test-annotations-not-json', 'test', _write(VAL_ANN, b'{'), EXIT2,
         'instances_val.json is not valid JSON'),
    Case('test-class-missing-from-categories', 'test', _edit_json(VAL_ANN, _drop_star), EXIT2,
         "instances_val.json: no category is named 'star'"),
    Case('test-box-without-width', 'test', _edit_json(VAL_ANN, _flatten_first_box), WARNS,
         'instances_val.json: skipped 1 box(es) with non-positive width or height'),
    Case('test-missing-data-root', 'test', lambda root: shutil.rmtree(root), EXIT2,
         'dataset not found'),
    # ------------------------------------------------------------------ images of a dataset
    Case('train-listed-image-missing', 'train', _on_first_image('train', Path.unlink), EXIT2,
         'image not found: {image} (image id 1) (in DataLoader worker process 0)', workers=True),
    Case('train-listed-image-undecodable', 'train',
         _on_first_image('train', lambda p: p.write_bytes(b'\x89PNG not really' * 20)), EXIT2,
         'cannot decode image {image}: not an image, or truncated'),
    Case('train-listed-image-empty', 'train',
         _on_first_image('train', lambda p: p.write_bytes(b'')), EXIT2,
         'cannot decode image {image}: the file is empty (0 bytes)'),
    Case('train-listed-image-is-a-folder', 'train', _on_first_image('train', _replace_with_folder),
         EXIT2, '{image} is a directory, not an image file (image id 1)'),
    # In training, filter_cfg.min_size (4 px in the demo, 32 in mmdet's COCO configs) leaves
    # such an image out before the pipeline sees it.
    Case('test-listed-image-1x4000', 'test', _make_thin('val'), EXIT2,
         'image {image} is 4000x1 pixels (width x height): Resize to scale (256, 256) with '
         'keep_ratio=True would make it 256x0', image_split='val'),
    Case('test-listed-image-missing', 'test', _on_first_image('val', Path.unlink), EXIT2,
         'image not found: {image}', image_split='val'),
    Case('test-listed-image-truncated', 'test',
         _on_first_image('val', lambda p: p.write_bytes(p.read_bytes()[:200])), EXIT2,
         'cannot decode image {image}', image_split='val'),
    # ------------------------------------------------------------------ images given to the demo
    Case('demo-image-empty', 'demo', _on_first_image('val', lambda p: p.write_bytes(b'')), EXIT2,
         'cannot decode image {image}: the file is empty (0 bytes)', image_split='val'),
    Case('demo-image-1x4000', 'demo', _make_thin('val'), EXIT2,
         'image {image} is 4000x1 pixels (width x height): Resize to scale (256, 256) with '
         'keep_ratio=True would make it 256x0', image_split='val'),
    Case('demo-image-fine', 'demo', lambda root: None, OK,
         'detections with score >= 0.0 drawn to {work}/drawn.png', image_split='val'),
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


def _run(tool: str, args: list, capsys) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``tools/TOOL.py ARGS``."""
    mmengine_console_to_stdout()
    status = load_tool(tool).main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _arguments(case: Case, root: Path, work_dir: Path, checkpoint: str, image: str) -> list:
    # The Runner's logger and visualizer are process-wide instances found by name, and keep
    # the folders of the run that made them (mmdet names every visualizer 'visualizer'):
    # one name per row, as each row is a process of its own for a user.
    options = ['--cfg-options', 'train_cfg.max_epochs=1', f'experiment_name={case.id}',
               f'visualizer.name={case.id}', *([] if case.workers else NO_WORKERS)]
    if case.tool == 'train':
        return [DEMO, '--work-dir', str(work_dir), '--data-root', str(root), *options]
    if case.tool == 'test':
        return [DEMO, checkpoint, '--work-dir', str(work_dir), '--data-root', str(root), *options]
    return [image, DEMO, checkpoint, '--out-file', str(work_dir / 'drawn.png'),
            '--score-thr', '0']


@pytest.mark.parametrize('case', CASES, ids=[c.id for c in CASES])
def test_bad_dataset(case: Case, shapes, random_checkpoint, tmp_path, capsys):
    root = tmp_path / 'data'
    shutil.copytree(shapes, root)
    image = _first_image(case.image_split)(root)
    case.change(root)
    args = _arguments(case, root, tmp_path / 'work', random_checkpoint, image)
    status, out, err = _run(case.tool, args, capsys)
    expected = case.expect.format(root=root, image=image, work=tmp_path / 'work')
    if case.outcome == EXIT2:
        assert status == 2, f'exit status {status}\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}'
        assert 'Traceback' not in err, err
        error_lines = [line for line in err.splitlines() if line.startswith('error: ')]
        assert len(error_lines) == 1, err
        for text in expected.split('|'):
            assert text in error_lines[0], error_lines[0]
    else:
        assert status == 0, f'exit status {status}\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}'
        for text in expected.split('|'):
            assert text in out, out[-3000:]
        if case.outcome == WARNS:
            warnings = [line for line in out.splitlines() if expected in line]
            assert len(warnings) == 1 and 'WARNING' in warnings[0], warnings


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
        status, out, err = _run('test', [
            trained.config, str(trained.checkpoint), '--work-dir', str(root / 'work'),
            '--data-root', str(root), '--cfg-options', f'experiment_name=order-{how}-{variant}',
            f'visualizer.name=order-{how}-{variant}', *NO_WORKERS], capsys)
        assert status == 0, err[-2000:]
        metrics[variant] = json.loads((root / 'work' / 'metrics.json').read_text())
    assert metrics[how] == metrics['original']
    assert metrics['names-swapped'] != metrics['original']
