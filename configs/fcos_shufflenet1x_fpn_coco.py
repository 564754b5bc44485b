# FCOS with ShuffleNet 1x (g=3) and FPN: mmdet's config with the backbone swapped. It brings its
# own runtime, so the plugin, the input convention, the initialiser, the checkpoint hook and
# the checked dataset and metric are set here (see _base_/shufflenet_runtime.py).
_base_ = ['mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py', './_base_/shufflenet_plugin.py']
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
