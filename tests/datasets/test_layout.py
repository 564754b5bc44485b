import pytest
from mmengine.config import Config

from shufflenet_det.datasets import DatasetLayoutError, check_dataset_paths, set_data_root

from ..helpers import REPO, load_tool

train = load_tool('train')


def test_missing_coco_gives_one_error_naming_paths_and_layout(tmp_path, capsys):
    root = tmp_path / 'nowhere'
    assert train.main([str(REPO / 'configs/faster_rcnn_shufflenet2x_coco.py'),
                       '--data-root', str(root), '--work-dir', str(tmp_path / 'w')]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: dataset not found:')
    assert f'missing file: {root}/annotations/instances_train2017.json' in err
    assert f'missing folder: {root}/val2017' in err
    assert 'The config expects:' in err and f'{root}/train2017/' in err
    assert 'Traceback' not in err


def test_data_root_moves_datasets_and_evaluators():
    cfg = Config.fromfile(str(REPO / 'configs/faster_rcnn_shufflenet2x_coco.py'))
    set_data_root(cfg, '/datasets/coco')
    assert cfg.train_dataloader.dataset.data_root == '/datasets/coco/'
    assert cfg.test_dataloader.dataset.data_root == '/datasets/coco/'
    assert cfg.val_evaluator.ann_file == '/datasets/coco/annotations/instances_val2017.json'
    assert cfg.test_evaluator.ann_file == '/datasets/coco/annotations/instances_val2017.json'


def test_only_the_missing_annotation_is_reported(tmp_path):
    for d in ('annotations', 'train2017', 'val2017'):
        (tmp_path / d).mkdir()
    (tmp_path / 'annotations/instances_train2017.json').write_text('{}')
    cfg = Config.fromfile(str(REPO / 'configs/faster_rcnn_shufflenet1x_coco.py'))
    set_data_root(cfg, str(tmp_path))
    with pytest.raises(DatasetLayoutError) as info:
        check_dataset_paths(cfg)
    missing = [line for line in str(info.value).splitlines() if line.startswith('  missing ')]
    assert len(missing) == 1 and 'instances_val2017.json' in missing[0]
    assert 'val_dataloader, test_dataloader, ValidatedCocoMetric' in missing[0]
