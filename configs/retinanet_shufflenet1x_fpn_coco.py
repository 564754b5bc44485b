# RetinaNet with ShuffleNet 1x (g=3) and FPN: mmdet's config with the backbone swapped (see
# fcos_shufflenet1x_fpn_coco.py for why the shared settings are stated here). Stages 2-4 are
# C3-C5 (strides 8-32); P6 and P7 come from extra convs as in mmdet.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', './_base_/shufflenet_plugin.py']
from shufflenet_det.models import shufflenet_v1_channels  # noqa: E402

stem, stage2, stage3, stage4 = shufflenet_v1_channels(3, 1.0)
model = dict(
    data_preprocessor=dict(mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0], bgr_to_rgb=False),
    init_cfg=dict(type='ShuffleNetPretrained',
                  checkpoint='checkpoints/shufflenet_v1_1x_g3_imagenet.pth'),
    backbone=dict(_delete_=True, type='ShuffleNetV1', groups=3, widen_factor=1.0,
                  out_indices=(0, 1, 2), frozen_stages=0, norm_eval=True),
    neck=dict(in_channels=[stage2, stage3, stage4], start_level=0))
default_hooks = dict(checkpoint=dict(type='ResumableCheckpointHook'))
train_dataloader = dict(dataset=dict(type='ValidatedCocoDataset'))
val_dataloader = test_dataloader = dict(dataset=dict(type='ValidatedCocoDataset'))
val_evaluator = test_evaluator = dict(type='ValidatedCocoMetric')
