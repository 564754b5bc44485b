# The paper's 300-input setting: shorter side 300, longer side at most 500. Only
# variables, so that this file combines with any detector config as a second base (the
# dataset type, ValidatedCocoDataset, comes from coco_600.py through that config).
train_pipeline_300 = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(500, 300), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline_300 = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(500, 300), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
