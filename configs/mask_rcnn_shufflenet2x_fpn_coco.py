# Mask R-CNN with ShuffleNet 2x (g=3) and FPN: mmdet's config with the backbone swapped.
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', './_base_/shufflenet_runtime.py']
from shufflenet_det.models import shufflenet_v1_channels  # noqa: E402

groups, widen_factor = 3, 2.0
stem, stage2, stage3, stage4 = shufflenet_v1_channels(groups, widen_factor)
pretrained = 'checkpoints/shufflenet_v1_2x_g3_imagenet.pth'

model = dict(
    data_preprocessor=dict(mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0], bgr_to_rgb=False),
    init_cfg=dict(type='ShuffleNetPretrained', checkpoint=pretrained, missing_ok=True),
    backbone=dict(
        _delete_=True, type='ShuffleNetV1', groups=groups, widen_factor=widen_factor,
        out_indices=(1, 2, 3), frozen_stages=0, norm_eval=True),
    # Levels start at stride 8 (see faster_rcnn_shufflenet2x_fpn_coco.py).
    neck=dict(in_channels=[stage2, stage3, stage4], num_outs=5),
    rpn_head=dict(anchor_generator=dict(scales=[4], strides=[8, 16, 32, 64, 128])),
    roi_head=dict(
        bbox_roi_extractor=dict(featmap_strides=[8, 16, 32, 64]),
        mask_roi_extractor=dict(featmap_strides=[8, 16, 32, 64])))

# Annotation files checked on load, degenerate boxes counted (shufflenet_det.datasets.coco).
train_dataloader = dict(dataset=dict(type='ValidatedCocoDataset'))
val_dataloader = dict(dataset=dict(type='ValidatedCocoDataset'))
test_dataloader = val_dataloader

# Atomic checkpoints with generator states, so --resume repeats the run (README, Resuming).
default_hooks = dict(checkpoint=dict(type='ResumableCheckpointHook'))
