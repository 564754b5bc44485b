# Faster R-CNN with ShuffleNet 1x (g=3) and the mobile FPN at 600 input.
_base_ = './faster_rcnn_shufflenet2x_fpn_coco.py'
from shufflenet_det.models import shufflenet_v1_channels  # noqa: E402

stem, stage2, stage3, stage4 = shufflenet_v1_channels(3, 1.0)
model = dict(
    init_cfg=dict(checkpoint='checkpoints/shufflenet_v1_1x_g3_imagenet.pth'),
    backbone=dict(widen_factor=1.0),
    neck=dict(in_channels=[stage3, stage4]))
