# Mask R-CNN with ShuffleNet 2x (g=3) and FPN from stride 8: mmdet's config with the backbone
# swapped (fcos_shufflenet1x_fpn_coco.py says why the shared settings are stated here).
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', './_base_/shufflenet_plugin.py']
from shufflenet_det.models import shufflenet_v1_channels  # noqa: E402

stem, stage2, stage3, stage4 = shufflenet_v1_channels(3, 2.0)
model = dict(
    data_preprocessor=dict(mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0], bgr_to_rgb=False),
    init_cfg=dict(type='ShuffleNetPretrained',
                  checkpoint='checkpoints/shufflenet_v1_2x_g3_imagenet.pth'),
    backbone=dict(_delete_=True, type='ShuffleNetV1', groups=3, widen_factor=2.0,
                  out_indices=(0, 1, 2), frozen_stages=0, norm_eval=True),
    neck=dict(in_channels=[stage2, stage3, stage4], num_outs=5),
    rpn_head=dict(anchor_generator=dict(scales=[4], strides=[8, 16, 32, 64, 128])),
    roi_head=dict(bbox_roi_extractor=dict(featmap_strides=[8, 16, 32, 64]),
                  mask_roi_extractor=dict(featmap_strides=[8, 16, 32, 64])))
default_hooks = dict(checkpoint=dict(type='ResumableCheckpointHook'))
train_dataloader = dict(dataset=dict(type='ValidatedCocoDataset'))
val_dataloader = test_dataloader = dict(dataset=dict(type='ValidatedCocoDataset'))
val_evaluator = test_evaluator = dict(type='ValidatedCocoMetric')
