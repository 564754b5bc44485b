# Faster R-CNN with ShuffleNet 2x (g=3) and a mobile FPN: the modern layout beside the
# paper's C4, arranged as torchvision's Faster R-CNN MobileNetV3-FPN detectors. Root
# configs change the width, the checkpoint and the neck's input channels.
_base_ = 'mmdet::_base_/models/faster-rcnn_r50_fpn.py'
from shufflenet_det.models import shufflenet_v1_channels  # noqa: E402

stem, stage2, stage3, stage4 = shufflenet_v1_channels(3, 2.0)
model = dict(
    # Megvii's weights take BGR 0-255 images, not normalised (checked at initialisation).
    data_preprocessor=dict(mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0], bgr_to_rgb=False),
    init_cfg=dict(type='ShuffleNetPretrained',
                  checkpoint='checkpoints/shufflenet_v1_2x_g3_imagenet.pth'),
    # Few images per GPU: keep ImageNet BN statistics (norm_eval), freeze the stem.
    backbone=dict(_delete_=True, type='ShuffleNetV1', groups=3, widen_factor=2.0,
                  out_indices=(1, 2), frozen_stages=0, norm_eval=True),
    # Stage 3 and Stage 4 (strides 16, 32) plus one max-pooled level. A stride-8 level would
    # cost the RPN and FPN convs four times the positions for little gain at these scales.
    neck=dict(in_channels=[stage3, stage4], num_outs=3),
    # Every level gets all five anchor sizes, 32-512 px (base size 16 x scales).
    rpn_head=dict(anchor_generator=dict(
        scales=[2, 4, 8, 16, 32], base_sizes=[16, 16, 16], strides=[16, 32, 64])),
    roi_head=dict(bbox_roi_extractor=dict(featmap_strides=[16, 32])),
    # 300 test proposals, as in the C4 configs and the MobileNet detection work.
    test_cfg=dict(rpn=dict(max_per_img=300)))
