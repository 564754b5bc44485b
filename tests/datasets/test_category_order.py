"""Labels follow the class names, whatever the order of a file's categories.

MMDetection's ``CocoDataset`` and ``CocoMetric`` number the labels by the order of the
file's ``categories``: a val file listing the same categories in another order than the
training file swapped the labels and gave a wrong mAP with exit status 0. Here the
ground truth of the original file is scored, as predictions, against the reordered
file: a perfect 1.0 through ``ValidatedCocoMetric``, and less through mmdet's own
classes, which shows that the reordered files do catch the old behaviour.
"""
import json
from pathlib import Path

import pytest
import torch
from mmdet.evaluation import CocoMetric
from mmdet.registry import DATASETS

from shufflenet_det.datasets import AnnotationError, ValidatedCOCO, ValidatedCocoDataset
from shufflenet_det.datasets.synthetic_shapes import CLASSES, generate_shapes_dataset
from shufflenet_det.evaluation import ValidatedCocoMetric


def reorder(coco: dict, how: str) -> dict:
    """``coco`` with its categories listed in reverse, or renumbered in reverse."""
    coco = json.loads(json.dumps(coco))
    if how == 'reversed list':
        coco['categories'] = coco['categories'][::-1]
    elif how == 'renumbered':  # what a labelling tool that numbers its own way exports
        new_id = {c['id']: len(coco['categories']) - i
                  for i, c in enumerate(coco['categories'])}
        for c in coco['categories']:
            c['id'] = new_id[c['id']]
        coco['categories'].sort(key=lambda c: c['id'])
        for a in coco['annotations']:
            a['category_id'] = new_id[a['category_id']]
    return coco


@pytest.fixture(scope='module')
def val_files(tmp_path_factory):
    """The generated val file, and the same annotations with the categories reordered."""
    root = tmp_path_factory.mktemp('shapes_order')
    files = generate_shapes_dataset(str(root), num_train=1, num_val=6, image_size=64)
    coco = json.loads(Path(files['val']).read_text())
    assert len({a['category_id'] for a in coco['annotations']}) >= 3
    out = {'original': files['val']}
    for how in ('reversed list', 'renumbered'):
        path = root / 'annotations' / f'val_{how.replace(" ", "_")}.json'
        path.write_text(json.dumps(reorder(coco, how)))
        out[how] = str(path)
    return root, out


def build(dataset_type, root, ann_file):
    return DATASETS.build(dict(
        type=dataset_type, data_root=str(root), ann_file=ann_file, data_prefix=dict(img='val/'),
        metainfo=dict(classes=CLASSES), test_mode=True, pipeline=[]))


def labels_by_image(dataset) -> dict:
    infos = (dataset.get_data_info(i) for i in range(len(dataset)))
    return {info['img_id']: sorted((tuple(inst['bbox']), inst['bbox_label'])
                                   for inst in info['instances']) for info in infos}


@pytest.mark.parametrize('how', ['reversed list', 'renumbered'])
def test_dataset_labels_follow_the_class_names(val_files, how):
    root, files = val_files
    original = labels_by_image(build('ValidatedCocoDataset', root, files['original']))
    assert labels_by_image(build('ValidatedCocoDataset', root, files[how])) == original
    # mmdet's CocoDataset numbers by the file's order: the files do swap its labels.
    assert labels_by_image(build('CocoDataset', root, files[how])) != original


def ground_truth_as_predictions(dataset) -> list[dict]:
    """One data sample per image whose predictions are the image's boxes, scored 1."""
    samples = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        boxes = [inst['bbox'] for inst in info['instances']]
        samples.append(dict(
            img_id=info['img_id'], ori_shape=(info['height'], info['width']),
            pred_instances=dict(
                bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                scores=torch.ones(len(boxes)),
                labels=torch.tensor([inst['bbox_label'] for inst in info['instances']],
                                    dtype=torch.int64))))
    return samples


def mean_ap(metric, dataset, samples) -> float:
    metric.dataset_meta = dataset.metainfo
    metric.process({}, samples)
    return metric.evaluate(len(samples))['coco/bbox_mAP']


@pytest.mark.parametrize('how', ['original', 'reversed list', 'renumbered'])
def test_metric_scores_labels_by_class_name(val_files, how):
    root, files = val_files
    # Predictions as a model trained with the original order makes them: label i is CLASSES[i].
    predictions = ground_truth_as_predictions(build('ValidatedCocoDataset', root,
                                                    files['original']))
    dataset = build('ValidatedCocoDataset', root, files[how])
    assert mean_ap(ValidatedCocoMetric(ann_file=files[how]), dataset, predictions) == 1.0
    if how != 'original':
        # mmdet's CocoMetric maps label i to the file's i-th category: a wrong mAP.
        assert mean_ap(CocoMetric(ann_file=files[how]), dataset, predictions) < 0.9


def test_the_evaluator_built_by_name_scores_by_class_name(val_files):
    """The metric built from the registry by its name, as the configs build it."""
    from mmengine.evaluator import Evaluator
    root, files = val_files
    predictions = ground_truth_as_predictions(build('ValidatedCocoDataset', root,
                                                    files['original']))
    dataset = build('ValidatedCocoDataset', root, files['renumbered'])
    evaluator = Evaluator(dict(type='ValidatedCocoMetric', ann_file=files['renumbered']))
    evaluator.dataset_meta = dataset.metainfo
    evaluator.process(predictions)
    assert isinstance(dataset, ValidatedCocoDataset)
    assert evaluator.evaluate(len(dataset))['coco/bbox_mAP'] == 1.0


def test_a_class_name_missing_from_the_file_is_an_error(val_files, tmp_path):
    root, files = val_files
    coco = json.loads(Path(files['original']).read_text())
    coco['categories'] = [c for c in coco['categories'] if c['name'] != 'star']
    coco['annotations'] = [a for a in coco['annotations'] if a['category_id'] in
                           {c['id'] for c in coco['categories']}]
    path = tmp_path / 'no_star.json'
    path.write_text(json.dumps(coco))
    pattern = r"no_star.json: no category is named 'star' \(1 of the 5 class names in metainfo\)"
    with pytest.raises(AnnotationError, match=pattern):
        build('ValidatedCocoDataset', root, str(path))
    metric = ValidatedCocoMetric(ann_file=str(path))
    with pytest.raises(AnnotationError, match=pattern):
        metric.dataset_meta = dict(classes=CLASSES)


def test_a_class_name_shared_by_two_categories_is_an_error(val_files, tmp_path):
    root, files = val_files
    coco = json.loads(Path(files['original']).read_text())
    coco['categories'].append(dict(id=99, name='star'))
    path = tmp_path / 'two_stars.json'
    path.write_text(json.dumps(coco))
    with pytest.raises(AnnotationError, match=r"categories \[4, 99\] are all named 'star'"):
        build('ValidatedCocoDataset', root, str(path))


def test_get_cat_ids_keeps_pycocotools_answers_without_names(val_files):
    _, files = val_files
    coco = ValidatedCOCO(files['reversed list'])
    assert coco.get_cat_ids() == [5, 4, 3, 2, 1]  # the file's order, as pycocotools
    assert coco.get_cat_ids(cat_names=['cross', 'circle']) == [5, 1]
    assert coco.get_cat_ids(cat_names='square') == [2]
    assert coco.get_cat_ids(cat_ids=[3, 1]) == [3, 1]


DETECTION_CONFIGS = sorted(p.name for p in (Path(__file__).parents[2] / 'configs').glob('*.py'))


@pytest.mark.parametrize('name', DETECTION_CONFIGS)
def test_every_detection_config_evaluates_by_class_name(name):
    from mmengine.config import Config
    cfg = Config.fromfile(str(Path(__file__).parents[2] / 'configs' / name))
    assert cfg.val_evaluator.type == cfg.test_evaluator.type == 'ValidatedCocoMetric'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.type == 'ValidatedCocoDataset', loader
