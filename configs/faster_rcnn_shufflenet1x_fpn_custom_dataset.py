# Fine-tuning on your own COCO-format dataset (docs/finetune_custom_dataset.md): Faster R-CNN
# with the ImageNet-pretrained ShuffleNet 1x (g=3) and the mobile FPN, here with two classes.
# Replace the class names with those of your annotation files' `categories`.
_base_ = './faster_rcnn_shufflenet1x_fpn_coco.py'

data_root = 'data/my_dataset/'
metainfo = dict(classes=('round', 'angular'))
model = dict(roi_head=dict(bbox_head=dict(num_classes=len(metainfo['classes']))))
train_dataloader = dict(dataset=dict(
    data_root=data_root, metainfo=metainfo,
    ann_file='annotations/train.json', data_prefix=dict(img='train/')))
val_dataloader = dict(dataset=dict(
    data_root=data_root, metainfo=metainfo,
    ann_file='annotations/val.json', data_prefix=dict(img='val/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
