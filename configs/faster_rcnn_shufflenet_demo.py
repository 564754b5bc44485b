# The embedded demo: Faster R-CNN + FPN with ShuffleNet 0.5x (g=3), trained from scratch
# on the generated shapes dataset (tools/run_demo.py makes it) in minutes on 2 CPU cores.
# The head is light because on a CPU the RoI head, not the backbone, dominates the cost
# of small images: 64-channel FPN, 128 sampled RoIs, 256-d box head.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    './_base_/shufflenet_runtime.py',
]
from shufflenet_det.datasets.synthetic_shapes import CLASSES  # noqa: E402
from shufflenet_det.models import shufflenet_v1_channels  # noqa: E402

groups, widen_factor = 3, 0.5
stem, stage2, stage3, stage4 = shufflenet_v1_channels(groups, widen_factor)
data_root = 'data/demo/'
metainfo = dict(classes=CLASSES)

model = dict(
    # From scratch: normalise with the generated images' statistics, BN in train mode.
    data_preprocessor=dict(mean=[128.0, 128.0, 128.0], std=[64.0, 64.0, 64.0],
                           bgr_to_rgb=False, pad_size_divisor=32),
    backbone=dict(_delete_=True, type='ShuffleNetV1', groups=groups,
                  widen_factor=widen_factor, out_indices=(0, 1, 2)),
    neck=dict(in_channels=[stage2, stage3, stage4], out_channels=64, num_outs=4),
    rpn_head=dict(
        in_channels=64, feat_channels=64,
        anchor_generator=dict(scales=[4], strides=[8, 16, 32, 64])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64, featmap_strides=[8, 16, 32]),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=len(CLASSES))),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=500),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=100), rcnn=dict(max_per_img=50)))

# The generated images are 256 px already; Resize also records the scale factor.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(256, 256), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 256), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=8, num_workers=1, persistent_workers=True,
    dataset=dict(type='ValidatedCocoDataset', data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=4), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=1, persistent_workers=True,
    dataset=dict(type='ValidatedCocoDataset', data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_val.json', data_prefix=dict(img='val/'),
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='ValidatedCocoMetric',
                     ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

max_epochs = 14
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=7)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# lr 0.04 without clipping went NaN in epoch 3 in a calibration run; 0.02 with clipping
# trained stably.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[11, 13],
         gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=8)
randomness = dict(seed=0)
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
