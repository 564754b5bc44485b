"""Every detection config builds, takes a gradient step and predicts on CPU."""
from pathlib import Path

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config

from shufflenet_det.checkpoint import configure_training_from_scratch
from shufflenet_det.models import ShuffleNetV1, ShuffleNetV1SharedHead

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted(p.name for p in (REPO / 'configs').glob('*.py'))
C4 = [c for c in CONFIGS if c.startswith('faster_rcnn_') and 'fpn' not in c and 'demo' not in c]


def load(name: str, small: bool = True) -> Config:
    """The config, with fewer sampled RoIs and proposals when ``small`` (CPU test speed)."""
    cfg = Config.fromfile(str(REPO / 'configs' / name))
    if small:
        if cfg.model.get('train_cfg', {}).get('rcnn'):
            cfg.model.train_cfg.rcnn.sampler.num = 32
        if cfg.model.get('test_cfg', {}).get('rpn'):
            cfg.model.test_cfg.rpn.max_per_img = 20
    return cfg


def test_the_expected_configs_exist():
    assert set(CONFIGS) >= {
        'faster_rcnn_shufflenet2x_coco.py', 'faster_rcnn_shufflenet2x_300_coco.py',
        'faster_rcnn_shufflenet1x_coco.py', 'faster_rcnn_shufflenet1x_300_coco.py',
        'faster_rcnn_shufflenet2x_fpn_coco.py', 'faster_rcnn_shufflenet1x_fpn_coco.py',
        'retinanet_shufflenet1x_fpn_coco.py', 'fcos_shufflenet1x_fpn_coco.py',
        'mask_rcnn_shufflenet2x_fpn_coco.py', 'faster_rcnn_shufflenet_demo.py'}


@pytest.mark.parametrize('name', CONFIGS)
def test_config_trains_one_step_and_predicts(name, mmlog):
    cfg = load(name)
    assert cfg.custom_imports.imports == ['shufflenet_det']
    # No ImageNet checkpoint in the tests (it would be refused).
    configure_training_from_scratch(cfg.model)
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert isinstance(model.backbone, ShuffleNetV1)
    num_classes = cfg.model.get('roi_head', cfg.model).bbox_head.num_classes  # 80 for COCO
    with_mask = cfg.model.type == 'MaskRCNN'
    model.train()
    data = model.data_preprocessor(demo_mm_inputs(
        batch_size=2, image_shapes=[(3, 128, 160)] * 2, num_items=[3, 2],
        num_classes=num_classes, with_mask=with_mask), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01)
    watched = model.neck if hasattr(model, 'neck') else model.rpn_head
    before = [p.detach().clone() for p in watched.parameters()]
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, watched.parameters()))

    model.eval()
    data = model.data_preprocessor(demo_mm_inputs(
        batch_size=1, image_shapes=[(3, 128, 160)], num_classes=num_classes), False)
    with torch.no_grad():
        result = model.predict(data['inputs'], data['data_samples'])[0]
    boxes = result.pred_instances.bboxes
    assert boxes.ndim == 2 and boxes.shape[1] == 4
    assert len(result.pred_instances.scores) == len(result.pred_instances.labels) == len(boxes)


# The strides of the maps each config takes from the backbone: out_indices 0, 1, 2 are
# Stages 2, 3, 4 (strides 8, 16, 32), as in mmpretrain's ShuffleNetV1.
TAKEN_STRIDES = {name: (16, ) for name in C4}
TAKEN_STRIDES.update({name: (16, 32) for name in CONFIGS
                      if name.startswith('faster_rcnn_') and 'fpn' in name})
TAKEN_STRIDES.update({'faster_rcnn_shufflenet_demo.py': (8, 16, 32),
                      'retinanet_shufflenet1x_fpn_coco.py': (8, 16, 32),
                      'fcos_shufflenet1x_fpn_coco.py': (8, 16, 32),
                      'mask_rcnn_shufflenet2x_fpn_coco.py': (8, 16, 32)})


def test_every_config_names_the_stages_it_takes():
    assert sorted(TAKEN_STRIDES) == CONFIGS
    for name, strides in TAKEN_STRIDES.items():
        backbone = MODELS.build(load(name).model.backbone)
        assert backbone.out_strides == strides, name
        assert backbone.out_indices == tuple({8: 0, 16: 1, 32: 2}[s] for s in strides), name


@pytest.mark.parametrize('name', C4)
def test_c4_configs_run_stage4_per_roi_only(name):
    cfg = load(name)
    model = MODELS.build(cfg.model).eval()
    backbone, head = model.backbone, model.roi_head.shared_head
    assert len(backbone.layers) == 2 and backbone.out_strides == (16, )
    assert isinstance(head, ShuffleNetV1SharedHead) and len(head.stage4) == 4
    # Channels are wired from the backbone, not copied.
    assert model.rpn_head.rpn_conv.in_channels == backbone.out_channels[0] == head.in_channels
    assert model.roi_head.bbox_head.in_channels == head.out_channels
    assert cfg.model.test_cfg.rpn.max_per_img == 20  # (300 in the config; lowered for speed)
    inputs = []
    head.stage4.register_forward_hook(lambda m, args, out: inputs.append(args[0].shape))
    data = model.data_preprocessor(demo_mm_inputs(batch_size=1, image_shapes=[(3, 128, 160)],
                                                  num_classes=80), False)
    with torch.no_grad():
        model.predict(data['inputs'], data['data_samples'])
    (n, c, h, w), = inputs
    assert (c, h, w) == (head.in_channels, 14, 14) and n == 20


@pytest.mark.parametrize('name,short,long', [
    ('faster_rcnn_shufflenet2x_coco.py', 600, 1000), ('faster_rcnn_shufflenet1x_coco.py', 600, 1000),
    ('faster_rcnn_shufflenet2x_300_coco.py', 300, 500),
    ('faster_rcnn_shufflenet1x_300_coco.py', 300, 500)])
def test_input_scales_follow_the_paper(name, short, long):
    cfg = load(name, small=False)
    for pipeline in (cfg.train_dataloader.dataset.pipeline, cfg.test_dataloader.dataset.pipeline):
        resize = next(t for t in pipeline if t['type'] == 'Resize')
        assert resize['scale'] == (long, short) and resize['keep_ratio']
    assert cfg.model.test_cfg.rpn.max_per_img == 300
    assert cfg.model.train_cfg.rcnn.sampler.num == 128
    assert cfg.auto_scale_lr.base_batch_size == 16 and cfg.train_cfg.max_epochs == 12
    assert cfg.model.backbone.norm_eval and cfg.model.roi_head.shared_head.norm_eval


def test_widths_follow_the_config_names():
    for name in CONFIGS:
        cfg = load(name, small=False)
        if 'shufflenet2x' in name:
            assert cfg.model.backbone.widen_factor == 2.0, name
        if 'shufflenet1x' in name:
            assert cfg.model.backbone.widen_factor == 1.0, name
