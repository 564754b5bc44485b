"""ValidatedCocoDataset and StrictLoadImageFromFile: broken data fails naming the file."""
import contextlib
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from mmdet.registry import DATASETS, TRANSFORMS

from shufflenet_det.datasets import AnnotationError, ValidatedCOCO, ValidatedCocoDataset
from shufflenet_det.datasets.synthetic_shapes import CLASSES, generate_shapes_dataset

REPO = Path(__file__).resolve().parents[2]
# mmcv's loader by name, as the configs have it: the dataset loads through the strict one.
PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
            dict(type='PackDetInputs')]


def minimal_coco(num_images=2, boxes_per_image=2):
    images = [dict(id=i, file_name=f'{i:05d}.png', width=64, height=64)
              for i in range(1, num_images + 1)]
    annotations = [dict(id=(i - 1) * boxes_per_image + k + 1, image_id=i,
                        category_id=1 + k % len(CLASSES), bbox=[4 + 8 * k, 4, 10, 12],
                        area=120, iscrowd=0)
                   for i in range(1, num_images + 1) for k in range(boxes_per_image)]
    categories = [dict(id=k + 1, name=n) for k, n in enumerate(CLASSES)]
    return dict(images=images, annotations=annotations, categories=categories)


def write(tmp_path, content, name='ann.json'):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def build(root, test_mode=False, ann_file='annotations/instances_train.json'):
    return DATASETS.build(dict(
        type='ValidatedCocoDataset', data_root=str(root), ann_file=ann_file,
        data_prefix=dict(img='train/'), metainfo=dict(classes=CLASSES), pipeline=PIPELINE,
        test_mode=test_mode))


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes')
    generate_shapes_dataset(str(root), num_train=3, num_val=1, image_size=64)
    return root


def test_valid_file_loads_like_pycocotools(shapes):
    from pycocotools.coco import COCO
    ann_file = str(shapes / 'annotations/instances_train.json')
    ours, theirs = ValidatedCOCO(ann_file), COCO(ann_file)
    assert ours.dataset == theirs.dataset and ours.anns == theirs.anns
    assert ours.imgs == theirs.imgs and ours.cats == theirs.cats
    assert ours.img_ann_map is ours.imgToAnns and ours.cat_img_map is ours.catToImgs
    assert ours.get_ann_ids(img_ids=[1]) == theirs.getAnnIds(imgIds=[1])
    dataset = build(shapes)
    assert isinstance(dataset, ValidatedCocoDataset) and len(dataset) == 3


def test_malformed_json_names_file_line_and_column(tmp_path):
    path = write(tmp_path, '{\n  "images": [],\n  "annotations": [\n    {"id": 1,}\n  ]\n}')
    with pytest.raises(AnnotationError, match=r'line 4 column') as info:
        ValidatedCOCO(path)
    assert path in str(info.value) and 'not valid JSON' in str(info.value)
    assert isinstance(info.value, ValueError)
    # The same through the dataset, as a config builds it.
    (tmp_path / 'annotations').mkdir()
    (tmp_path / 'annotations/instances_train.json').write_text('{"images": [')
    with pytest.raises(AnnotationError, match='instances_train.json is not valid JSON.*line 1'):
        build(tmp_path)


@pytest.mark.parametrize('content, pattern', [
    ('[1, 2]', r'top level is a JSON list, not an object'),
    (b'\xff\xfe\x00garbage', r'not valid JSON'),
])
def test_not_a_coco_object(tmp_path, content, pattern):
    path = tmp_path / 'ann.json'
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(AnnotationError, match=pattern) as info:
        ValidatedCOCO(str(path))
    assert str(path) in str(info.value)


@pytest.mark.parametrize('key', ['images', 'annotations', 'categories'])
def test_missing_top_level_key_names_it_and_the_layout(tmp_path, key):
    coco = minimal_coco()
    del coco[key]
    path = write(tmp_path, coco)
    with pytest.raises(AnnotationError) as info:
        ValidatedCOCO(path)
    message = str(info.value)
    assert path in message and f"no '{key}' key" in message and 'COCO detection file' in message


@pytest.mark.parametrize('field, value, pattern', [
    ('image_id', 99, r"annotation id 3 has image_id 99, which is not among the 2 ids"),
    ('category_id', 42, r"annotation id 3 has category_id 42, which is not among"),
    ('bbox', [1, 2, 3], r"annotation id 3 has bbox \[1, 2, 3\]; expected 4 finite numbers"),
    ('bbox', [1, 2, '3', 4], r"annotation id 3 has bbox"),
    ('bbox', None, r"annotation id 3 has bbox None"),
    ('bbox', [1, 2, float('nan'), 4], r"annotation id 3 has bbox \[1, 2, nan, 4\]"),
    ('id', 1, r"annotation id 1 appears more than once"),
])
def test_bad_annotation_names_file_and_annotation_id(tmp_path, field, value, pattern):
    coco = minimal_coco()
    coco['annotations'][2][field] = value
    path = write(tmp_path, coco)
    with pytest.raises(AnnotationError, match=pattern) as info:
        ValidatedCOCO(path)
    assert str(info.value).startswith(path)


def test_degenerate_boxes_are_skipped_with_a_counted_warning(tmp_path, mmlog):
    root = tmp_path / 'shapes'
    files = generate_shapes_dataset(str(root), num_train=3, num_val=1, image_size=64)
    coco = json.loads(Path(files['train']).read_text())
    anns = coco['annotations']
    first_image = [a for a in anns if a['image_id'] == 1]
    assert len(first_image) >= 2
    # Zero width and negative height in image 1, zero height in image 2; every image keeps
    # at least one good box (the generator's seed is fixed).
    bad = {first_image[0]['id']: (0, 5), first_image[1]['id']: (5, -3)}
    second_image = [a for a in anns if a['image_id'] == 2]
    bad[second_image[0]['id']] = (7, 0)
    for a in anns:
        if a['id'] in bad:
            a['bbox'][2:] = bad[a['id']]
    Path(files['train']).write_text(json.dumps(coco))

    dataset = build(root)
    warnings = [r for r in mmlog.records
                if r.levelname == 'WARNING' and 'skipped' in r.getMessage()]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert files['train'] in message and 'skipped 3 box(es)' in message
    assert all(repr(i) in message for i in bad)

    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        img_id = info['img_id']
        good = [a for a in anns if a['image_id'] == img_id and a['id'] not in bad]
        expected = sorted([x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in good))
        assert sorted(inst['bbox'] for inst in info['instances']) == expected
        assert len(good) >= 1
        sample = dataset[index]['data_samples']
        assert sorted(sample.gt_instances.bboxes.tensor.tolist()) == expected
    assert sum(len(dataset.get_data_info(i)['instances']) for i in range(len(dataset))) \
        == len(anns) - len(bad)


def corrupt(root, kind):
    """Replace train image 00001.png with bytes that no decoder takes."""
    path = root / 'train' / '00001.png'
    data = path.read_bytes()
    path.write_bytes({'garbage': b'\x89PNG not really' * 20, 'empty': b'',
                      'truncated': data[:len(data) // 3]}[kind])
    return str(path)


@pytest.fixture
def corrupt_shapes(tmp_path):
    generate_shapes_dataset(str(tmp_path), num_train=3, num_val=1, image_size=64)
    return tmp_path


@pytest.mark.parametrize('kind', ['garbage', 'empty', 'truncated'])
@pytest.mark.parametrize('test_mode', [True, False])
def test_corrupt_image_fails_naming_the_file(corrupt_shapes, kind, test_mode):
    path = corrupt(corrupt_shapes, kind)
    dataset = build(corrupt_shapes, test_mode=test_mode)
    index = next(i for i in range(len(dataset))
                 if dataset.get_data_info(i)['img_path'].endswith('00001.png'))
    # In training BaseDataset would fetch another index if the pipeline gave None: it must
    # raise instead, every time.
    for _ in range(3):
        with pytest.raises(ValueError, match=f'cannot decode image {path}'):
            dataset[index]
    assert dataset[(index + 1) % len(dataset)]['inputs'].shape[-2:] == (64, 64)


def test_ignore_empty_covers_missing_files_only(corrupt_shapes, mmlog):
    load = TRANSFORMS.build(dict(type='StrictLoadImageFromFile', ignore_empty=True))
    missing = str(corrupt_shapes / 'train' / 'missing.png')
    assert load(dict(img_path=missing)) is None
    assert f'skipping unreadable image {missing}' in mmlog.text
    path = corrupt(corrupt_shapes, 'garbage')
    with pytest.raises(ValueError, match=f'cannot decode image {path}'):
        load(dict(img_path=path))
    pillow = TRANSFORMS.build(dict(type='StrictLoadImageFromFile', imdecode_backend='pillow'))
    with pytest.raises(ValueError, match=f'cannot decode image {path}: UnidentifiedImageError'):
        pillow(dict(img_path=path))


@contextlib.contextmanager
def hard_timeout(seconds):
    """Fail, rather than block CI, if the body runs longer than ``seconds``."""
    if not hasattr(signal, 'SIGALRM'):
        yield
        return

    def expire(signum, frame):
        raise TimeoutError(f'hung for more than {seconds} s')

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize('test_mode', [True, False])
def test_corrupt_image_fails_in_dataloader_workers_without_hanging(corrupt_shapes, test_mode):
    path = corrupt(corrupt_shapes, 'garbage')
    dataset = build(corrupt_shapes, test_mode=test_mode)
    # timeout: the loader itself gives up on a worker that sends nothing for that long.
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=2,
                                         collate_fn=lambda batch: batch, timeout=30)
    batches = iter(loader)
    try:
        with hard_timeout(60):
            for _ in batches:
                pass
    except ValueError as e:
        message = str(e)
        # The traceback's frames (torch's re-raise among them) hold the exception and the
        # iterator in a reference cycle. Left to the garbage collector, the workers' queues
        # are closed before the iterator's shutdown, which then waits out two 5 s joins.
        e.__traceback__ = None
    else:
        pytest.fail('the DataLoader gave every batch of a dataset with a corrupt image')
    del batches  # shuts the workers down now
    assert 'in DataLoader worker process' in message
    assert f'cannot decode image {path}' in message


DASH_O_SCRIPT = textwrap.dedent('''
    import sys
    import torch
    from mmengine.registry import DefaultScope
    import shufflenet_det  # noqa: F401
    from mmdet.registry import DATASETS
    from shufflenet_det.datasets.synthetic_shapes import CLASSES

    if __debug__:
        sys.exit('run me with python -O')
    DefaultScope.get_instance('corrupt-image-test', scope_name='mmdet')
    root, bad = sys.argv[1], sys.argv[2]
    dataset = DATASETS.build(dict(
        type='ValidatedCocoDataset', data_root=root, ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'), metainfo=dict(classes=CLASSES),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations', with_bbox=True), dict(type='PackDetInputs')]))
    index = next(i for i in range(len(dataset)) if dataset.get_data_info(i)['img_path'] == bad)
    try:
        dataset[index]
        sys.exit('main process: no error')
    except ValueError as e:
        print('MAIN:', e, flush=True)
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=2,
                                         collate_fn=lambda batch: batch, timeout=60)
    try:
        for _ in loader:
            pass
        sys.exit('DataLoader: no error')
    except ValueError as e:
        print('WORKER:', e, flush=True)
''')


@pytest.mark.slow
def test_corrupt_image_fails_under_python_dash_o(corrupt_shapes):
    """mmcv's check is an ``assert``: run without asserts, main process and workers.

    Slow only for the fresh interpreter's imports (tens of seconds without cached bytecode).
    """
    path = corrupt(corrupt_shapes, 'garbage')
    try:
        proc = subprocess.run(
            [sys.executable, '-O', '-c', DASH_O_SCRIPT, str(corrupt_shapes), path],
            cwd=REPO, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f'hung on a corrupt image: {e}')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    main = [line for line in proc.stdout.splitlines() if line.startswith('MAIN:')]
    assert main and f'cannot decode image {path}' in main[0]
    worker = proc.stdout[proc.stdout.index('WORKER:'):]
    assert 'in DataLoader worker process' in worker
    assert f'cannot decode image {path}' in worker


DETECTION_CONFIGS = sorted(p.name for p in (REPO / 'configs').glob('*.py'))


@pytest.mark.parametrize('name', DETECTION_CONFIGS)
def test_every_detection_config_loads_images_strictly_through_its_dataset(name, corrupt_shapes):
    from mmengine.config import Config

    from shufflenet_det.datasets import StrictLoadImageFromFile
    cfg = Config.fromfile(str(REPO / 'configs' / name))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        assert dataset.type == 'ValidatedCocoDataset', loader
        # The name DetInferencer and inference_detector look for.
        assert dataset.pipeline[0]['type'] == 'LoadImageFromFile', loader
    dataset = DATASETS.build(dict(cfg.test_dataloader.dataset, data_root=str(corrupt_shapes),
                                  ann_file='annotations/instances_val.json',
                                  data_prefix=dict(img='val/'), metainfo=dict(classes=CLASSES)))
    assert type(dataset.pipeline.transforms[0]) is StrictLoadImageFromFile
