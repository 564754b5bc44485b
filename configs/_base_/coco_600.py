# COCO 2017 at the paper's detection scale: shorter side 600, longer side at most 1000.
# val2017 is the 5000-image minival of the paper (Table 7). ValidatedCocoDataset
# (shufflenet_det.datasets.coco) fails naming the file on a broken annotation file or an
# undecodable image, and skips (counting) boxes with non-positive size. The pipelines keep
# mmcv's LoadImageFromFile by name, which MMDetection's DetInferencer looks for; the dataset
# loads through its strict subclass. Dataset and ValidatedCocoMetric map labels to the
# categories by name, whatever the order of a file's categories.
_base_ = 'mmdet::_base_/datasets/coco_detection.py'

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1000, 600), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1000, 600), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(dataset=dict(type='ValidatedCocoDataset', pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(type='ValidatedCocoDataset', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='ValidatedCocoMetric')
test_evaluator = val_evaluator
