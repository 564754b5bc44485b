"""What an exported detector records, compared with a config: the first difference, named."""
import json

import pytest
from mmengine.config import Config

from shufflenet_det.deploy.config_agreement import (check_config_agrees, config_classes,
                                                    config_difference, first_difference)
from shufflenet_det.deploy.detector_metadata import (META_CLASSES, META_SETTINGS,
                                                     META_TEST_PIPELINE)
from shufflenet_det.errors import ConfigError

from ..helpers import REPO

DEMO = REPO / 'configs/faster_rcnn_shufflenet_demo.py'


def _recorded(cfg: Config) -> dict:
    """The metadata an export of ``cfg``'s model would record (the parts compared)."""
    pre = cfg.model.data_preprocessor
    test_cfg = cfg.model.test_cfg
    settings = dict(
        preprocess=dict(mean=[float(m) for m in pre.mean], std=[float(s) for s in pre.std],
                        normalize=True, bgr_to_rgb=bool(pre.bgr_to_rgb),
                        pad_size_divisor=pre.pad_size_divisor, pad_value=0.0),
        rpn=dict(nms_pre=test_cfg.rpn.nms_pre, max_per_img=test_cfg.rpn.max_per_img,
                 min_bbox_size=float(test_cfg.rpn.min_bbox_size),
                 nms=dict(iou_threshold=test_cfg.rpn.nms.iou_threshold)),
        rcnn=dict(score_thr=test_cfg.rcnn.score_thr, max_per_img=test_cfg.rcnn.max_per_img,
                  nms=dict(iou_threshold=test_cfg.rcnn.nms.iou_threshold),
                  num_classes=cfg.model.roi_head.bbox_head.num_classes))
    pipeline = [step.to_dict() for step in cfg.test_dataloader.dataset.pipeline]
    return {META_SETTINGS: json.dumps(settings), META_CLASSES: json.dumps(config_classes(cfg)),
            META_TEST_PIPELINE: repr(pipeline)}


@pytest.fixture
def demo():
    cfg = Config.fromfile(str(DEMO))
    return cfg, _recorded(cfg)


def test_the_same_config_agrees_whatever_the_image_backend(demo):
    cfg, meta = demo
    assert config_difference('det.onnx', meta, cfg) is None
    cfg.test_dataloader.dataset.pipeline[0]['backend_args'] = dict(backend='local')
    assert config_difference('det.onnx', meta, cfg) is None
    check_config_agrees('det.onnx', meta, cfg)


@pytest.mark.parametrize('key,value,field,recorded,configured', [
    ('model.data_preprocessor.std', [1.0, 1.0, 1.0], 'model.data_preprocessor.std',
     [64.0] * 3, [1.0] * 3),
    ('model.data_preprocessor.rgb_to_bgr', True, 'model.data_preprocessor.bgr_to_rgb',
     False, True),
    ('model.data_preprocessor.pad_size_divisor', 64, 'model.data_preprocessor.pad_size_divisor',
     32, 64),
    ('model.roi_head.bbox_head.num_classes', 4, 'model.roi_head.bbox_head.num_classes', 5, 4),
    ('model.test_cfg.rpn.nms_pre', 1000, 'model.test_cfg.rpn.nms_pre', 500, 1000),
    ('model.test_cfg.rcnn.nms.iou_threshold', 0.6, 'model.test_cfg.rcnn.nms.iou_threshold',
     0.5, 0.6),
    ('test_dataloader.dataset.pipeline.1.keep_ratio', False, 'test_pipeline[1].keep_ratio',
     True, False),
    ('test_dataloader.dataset.metainfo.classes', ('circle', 'square'),
     'the number of classes', 5, 2),
])
def test_the_first_difference_is_named_with_both_values(demo, key, value, field, recorded,
                                                         configured):
    cfg, meta = demo
    cfg.merge_from_dict({key: value})
    assert config_difference('det.onnx', meta, cfg) == (field, recorded, configured)


def test_the_message_is_one_line_naming_the_file_the_field_and_the_config(demo):
    cfg, meta = demo
    cfg.merge_from_dict({'model.test_cfg.rcnn.score_thr': 0.3})
    with pytest.raises(ConfigError) as error:
        check_config_agrees('det.onnx', meta, cfg)
    assert str(error.value) == (
        f'det.onnx was exported with another config: model.test_cfg.rcnn.score_thr is 0.05 '
        f'in the file, 0.3 in {DEMO}; run it with the config it was exported from, or '
        'export it again from this one')


def test_pipelines_compare_step_by_step_and_key_by_key():
    recorded = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(256, 256))]
    assert first_difference('p', recorded, [dict(type='LoadImageFromFile'),
                                            dict(type='Resize', scale=[256, 256])]) is None
    assert first_difference('p', recorded, [dict(type='LoadImageFromFile'),
                                            dict(type='RandomResize', scale=(256, 256))]) == \
        ('p[1].type', 'Resize', 'RandomResize')
    assert first_difference('p', recorded, recorded[:1]) == ('len(p)', 2, 1)
    assert first_difference('p', recorded, [recorded[0], dict(type='Resize')]) == \
        ('p[1].scale', (256, 256), '<not set>')


def test_a_dataset_without_metainfo_has_its_class_s_classes():
    cfg = Config.fromfile(str(REPO / 'configs/faster_rcnn_shufflenet1x_fpn_coco.py'))
    classes = config_classes(cfg)
    assert len(classes) == 80 and classes[0] == 'person'
