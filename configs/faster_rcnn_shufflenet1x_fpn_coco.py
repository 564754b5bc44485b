# Faster R-CNN with ShuffleNet 1x (g=3) and the mobile FPN at 600 input.
_base_ = './faster_rcnn_shufflenet2x_fpn_coco.py'
from shufflenet_det.models import shufflenet_v1_channels  # noqa: E402

widen_factor = 1.0
stem, stage2, stage3, stage4 = shufflenet_v1_channels(3, widen_factor)
pretrained = 'checkpoints/shufflenet_v1_1x_g3_imagenet.pth'

model = dict(
    init_cfg=dict(checkpoint=pretrained),
    backbone=dict(widen_factor=widen_factor),
    neck=dict(in_channels=[stage3, stage4]))
