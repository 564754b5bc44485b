"""An annotation file with nothing to train on or to evaluate against is an error, not -1 APs."""
import json

import pytest
import torch
from mmdet.registry import DATASETS

from shufflenet_det.datasets import AnnotationError
from shufflenet_det.datasets.synthetic_shapes import CLASSES, generate_shapes_dataset
from shufflenet_det.evaluation import ValidatedCocoMetric


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes_empty')
    generate_shapes_dataset(str(root), num_train=3, num_val=2, image_size=64)
    return root


def variant(shapes, tmp_path, **changes) -> str:
    coco = json.loads((shapes / 'annotations/instances_train.json').read_text())
    coco.update(changes)
    path = tmp_path / 'ann.json'
    path.write_text(json.dumps(coco))
    return str(path)


def build(shapes, ann_file, test_mode=False, **kwargs):
    return DATASETS.build(dict(
        type='ValidatedCocoDataset', data_root=str(shapes), ann_file=ann_file,
        data_prefix=dict(img='train/'), metainfo=dict(classes=CLASSES), pipeline=[],
        test_mode=test_mode, **kwargs))


@pytest.mark.parametrize('filter_cfg', [dict(filter_empty_gt=True), None])
def test_training_on_a_file_without_annotations(shapes, tmp_path, filter_cfg):
    path = variant(shapes, tmp_path, annotations=[])
    with pytest.raises(AnnotationError, match=f'^{path}: its 3 images hold no box of the 5 '
                       'classes .*: there is nothing to train on$'):
        build(shapes, path, filter_cfg=filter_cfg)


def test_a_file_without_images(shapes, tmp_path):
    path = variant(shapes, tmp_path, images=[], annotations=[])
    for test_mode, what in ((False, 'train'), (True, 'test')):
        with pytest.raises(AnnotationError,
                           match=f'^{path} lists no images: there is nothing to {what} on$'):
            build(shapes, path, test_mode)


def test_a_filter_that_leaves_nothing(shapes, tmp_path):
    path = str(shapes / 'annotations/instances_train.json')
    with pytest.raises(AnnotationError, match=r"filter_cfg=\{'filter_empty_gt': True, "
                       r"'min_size': 100\} left none of its 3 images \(\d+ boxes of the 5"):
        build(shapes, path, filter_cfg=dict(filter_empty_gt=True, min_size=100))


def test_a_test_set_without_annotations_loads(shapes, tmp_path):
    """Image lists such as COCO test-dev: predictions for a test server need no boxes."""
    dataset = build(shapes, variant(shapes, tmp_path, annotations=[]), test_mode=True)
    assert len(dataset) == 3


def test_the_metric_refuses_a_file_without_annotations(shapes, tmp_path):
    path = variant(shapes, tmp_path, annotations=[])
    with pytest.raises(AnnotationError, match=rf'^{path} has no annotations \(it lists 3 images\)'
                       r': there is nothing to compute AP against. .*format_only=True'):
        ValidatedCocoMetric(ann_file=path)


def test_format_only_needs_no_annotations(shapes, tmp_path):
    path = variant(shapes, tmp_path, annotations=[])
    metric = ValidatedCocoMetric(ann_file=path, format_only=True,
                                 outfile_prefix=str(tmp_path / 'preds'))
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, [dict(img_id=1, ori_shape=(64, 64), pred_instances=dict(
        bboxes=torch.tensor([[1.0, 2.0, 11.0, 12.0]]), scores=torch.tensor([0.5]),
        labels=torch.tensor([3])))])
    assert metric.evaluate(1) == {}
    written = json.loads((tmp_path / 'preds.bbox.json').read_text())
    assert [(p['image_id'], p['category_id']) for p in written] == [(1, 4)]  # 'star'


def test_the_metric_without_a_file_refuses_ground_truth_without_boxes():
    metric = ValidatedCocoMetric()
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, [dict(img_id=i, ori_shape=(64, 64), instances=[], pred_instances=dict(
        bboxes=torch.zeros(0, 4), scores=torch.zeros(0), labels=torch.zeros(0, dtype=torch.int64)))
        for i in (1, 2)])
    with pytest.raises(AnnotationError, match='^the 2 evaluated images hold no ground-truth box'):
        metric.evaluate(2)
