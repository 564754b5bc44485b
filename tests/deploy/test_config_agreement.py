"""What an exported detector records, compared with a config: the first difference, named."""
import copy

import pytest
from mmengine.config import Config

from shufflenet_det.deploy import check_config_agrees, config_record
from shufflenet_det.errors import ConfigError

from ..helpers import REPO

DEMO = REPO / 'configs/faster_rcnn_shufflenet_demo.py'


@pytest.fixture
def demo():
    """The demo config, and what an export of its model records."""
    cfg = Config.fromfile(str(DEMO))
    return cfg, config_record(copy.deepcopy(cfg))


def _difference(record: dict, given: dict) -> str:
    """The part of the refusal between the file's name and the advice."""
    with pytest.raises(ConfigError) as error:
        check_config_agrees('det.onnx', record, given, 'CONFIG')
    message = str(error.value)
    assert message.startswith('det.onnx was exported with another config: ')
    assert message.endswith(' in CONFIG; run it with the config it was exported from, or '
                            'export it again from this one')
    return message.split(': ', 1)[1].split(' in CONFIG;')[0]


def test_the_same_config_agrees_whatever_the_image_backend(demo):
    cfg, record = demo
    check_config_agrees('det.onnx', record, config_record(cfg), 'CONFIG')
    cfg.test_dataloader.dataset.pipeline[0]['backend_args'] = dict(backend='local')
    check_config_agrees('det.onnx', record, config_record(cfg), 'CONFIG')


@pytest.mark.parametrize('key,value,difference', [
    ('model.data_preprocessor.mean', [0, 0, 0],
     'model.data_preprocessor.mean is [128, 128, 128] in the file, [0, 0, 0]'),
    ('model.data_preprocessor.std', [1.0, 1.0, 1.0],
     'model.data_preprocessor.std is [64, 64, 64] in the file, [1, 1, 1]'),
    ('model.data_preprocessor.rgb_to_bgr', True,
     'model.data_preprocessor.rgb_to_bgr is False in the file, True'),
    ('model.data_preprocessor.pad_size_divisor', 64,
     'model.data_preprocessor.pad_size_divisor is 32 in the file, 64'),
    ('model.roi_head.bbox_head.num_classes', 4,
     'model.roi_head.bbox_head.num_classes is 5 in the file, 4'),
    ('model.test_cfg.rpn.nms_pre', 1000, 'model.test_cfg.rpn.nms_pre is 500 in the file, 1000'),
    ('model.test_cfg.rcnn.score_thr', 0.3,
     'model.test_cfg.rcnn.score_thr is 0.05 in the file, 0.3'),
    ('model.test_cfg.rcnn.nms.iou_threshold', 0.6,
     'model.test_cfg.rcnn.nms.iou_threshold is 0.5 in the file, 0.6'),
    ('test_dataloader.dataset.pipeline.1.keep_ratio', False,
     'test_pipeline[1].keep_ratio is True in the file, False'),
    ('test_dataloader.dataset.pipeline.1.scale', (320, 320),
     'test_pipeline[1].scale is [256, 256] in the file, [320, 320]'),
    ('test_dataloader.dataset.metainfo.classes', ('square', 'circle'),
     "classes[0] is 'circle' in the file, 'square'"),
    ('test_dataloader.dataset.metainfo.classes', ('circle', 'square'),
     "classes[2] is 'triangle' in the file, <not set>"),
])
def test_the_first_difference_is_named_with_both_values(demo, key, value, difference):
    cfg, record = demo
    cfg.merge_from_dict({key: value})
    assert _difference(record, config_record(cfg)) == difference


def test_a_config_is_named_by_its_file_and_its_dataset_class_gives_its_classes(demo):
    _, record = demo
    coco = str(REPO / 'configs/faster_rcnn_shufflenet1x_fpn_coco.py')
    given = config_record(Config.fromfile(coco))
    assert len(given['classes']) == 80 and given['classes'][0] == 'person'
    with pytest.raises(ConfigError, match=f"classes\\[0\\] is 'circle' in the file, 'person' "
                                          f'in {coco}; run it'):
        check_config_agrees('det.onnx', record, given, coco)


def test_pipelines_compare_step_by_step_and_key_by_key():
    record = dict(test_pipeline=[dict(type='LoadImageFromFile'),
                                 dict(type='Resize', scale=(256, 256))])
    load = dict(type='LoadImageFromFile')
    check_config_agrees('det.onnx', record, dict(test_pipeline=[
        load, dict(type='Resize', scale=[256, 256])]), 'CONFIG')
    assert _difference(record, dict(test_pipeline=[load, dict(type='RandomResize',
                                                              scale=(256, 256))])) == \
        "test_pipeline[1].type is 'Resize' in the file, 'RandomResize'"
    assert _difference(record, dict(test_pipeline=[load])) == \
        "test_pipeline[1].type is 'Resize' in the file, <not set>"
    assert _difference(record, dict(test_pipeline=[load, dict(type='Resize')])) == \
        'test_pipeline[1].scale is [256, 256] in the file, <not set>'


def test_what_either_side_leaves_out_is_not_compared(demo):
    cfg, record = demo
    check_config_agrees('det.onnx', dict(record, test_pipeline=None, classes=None),
                        dict(config_record(cfg), test_pipeline=[dict(type='LoadImageFromFile')],
                             classes=['other']), 'CONFIG')
    del cfg.model.test_cfg.rcnn.max_per_img
    check_config_agrees('det.onnx', record, config_record(cfg), 'CONFIG')
