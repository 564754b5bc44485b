# Faster R-CNN with ShuffleNet 1x (g=3) and the mobile FPN at 300 input (longer side at most
# 500), with the test-time proposal budget torchvision uses at this scale: its
# MobileNetV3-Large-320-FPN takes the top 150 boxes of each level into NMS and keeps 150.
# 300 proposals would double the box head's cost.
_base_ = ['./faster_rcnn_shufflenet1x_fpn_coco.py', './_base_/coco_300_pipelines.py']

model = dict(test_cfg=dict(rpn=dict(nms_pre=150, max_per_img=150)))
train_dataloader = dict(dataset=dict(pipeline={{_base_.train_pipeline_300}}))
val_dataloader = dict(dataset=dict(pipeline={{_base_.test_pipeline_300}}))
test_dataloader = val_dataloader
