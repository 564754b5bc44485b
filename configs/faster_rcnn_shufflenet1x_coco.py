# ShuffleNet 1x (g=3) in the paper's layout at 600 input (Table 7: 19.8 mmAP).
_base_ = './faster_rcnn_shufflenet2x_coco.py'
from shufflenet_det.models import shufflenet_v1_channels  # noqa: E402

widen_factor = 1.0
stem, stage2, stage3, stage4 = shufflenet_v1_channels(3, widen_factor)
pretrained = 'checkpoints/shufflenet_v1_1x_g3_imagenet.pth'

model = dict(
    init_cfg=dict(checkpoint=pretrained),
    backbone=dict(widen_factor=widen_factor),
    rpn_head=dict(in_channels=stage3),
    roi_head=dict(
        shared_head=dict(widen_factor=widen_factor),
        bbox_roi_extractor=dict(out_channels=stage3),
        bbox_head=dict(in_channels=stage4)))
