# ShuffleNet 1x (g=3) in the paper's C4 layout at 600 input (Table 7: 19.8 mmAP).
_base_ = './faster_rcnn_shufflenet2x_coco.py'
from shufflenet_det.models import shufflenet_v1_channels  # noqa: E402

stem, stage2, stage3, stage4 = shufflenet_v1_channels(3, 1.0)
model = dict(
    init_cfg=dict(checkpoint='checkpoints/shufflenet_v1_1x_g3_imagenet.pth'),
    backbone=dict(widen_factor=1.0),
    rpn_head=dict(in_channels=stage3),
    roi_head=dict(
        shared_head=dict(widen_factor=1.0),
        bbox_roi_extractor=dict(out_channels=stage3),
        bbox_head=dict(in_channels=stage4)))
