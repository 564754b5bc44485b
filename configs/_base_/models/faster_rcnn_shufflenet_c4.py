# Faster R-CNN with ShuffleNet 2x (g=3) in the paper's layout. Stages 2-3 (stride 16) feed the
# RPN and RoIAlign; Stage 4 runs per RoI as the shared head (the "C4" layout of the Caffe
# Faster R-CNN the paper used), then pooling and the box classifier. Stage 4 does not run on
# the whole image. Root configs change the width, the checkpoint and the channel wiring.
_base_ = 'mmdet::_base_/models/faster-rcnn_r50-caffe-c4.py'
from shufflenet_det.models import shufflenet_v1_channels  # noqa: E402

stem, stage2, stage3, stage4 = shufflenet_v1_channels(3, 2.0)
model = dict(
    # Megvii's weights take BGR images in 0-255, not normalised; the initialiser checks this
    # against the checkpoint's recorded input convention.
    data_preprocessor=dict(mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0], bgr_to_rgb=False),
    # A converted official checkpoint: backbone.* into the backbone, Stage 4
    # (backbone.layers.2.*) into the RoI head. Without the file tools/train.py stops and
    # says how to get it; --from-scratch trains without it (norm_eval off, nothing frozen).
    init_cfg=dict(type='ShuffleNetPretrained',
                  checkpoint='checkpoints/shufflenet_v1_2x_g3_imagenet.pth'),
    # 2 images per GPU are too few for BN statistics: keep the ImageNet ones (norm_eval),
    # still training the affine parameters; the stem is generic enough to freeze.
    backbone=dict(_delete_=True, type='ShuffleNetV1', groups=3, widen_factor=2.0, num_stages=2,
                  out_indices=(1, ), frozen_stages=0, norm_eval=True),
    # A 256-channel RPN conv: the Caffe default of 512 would cost more than the backbone.
    rpn_head=dict(in_channels=stage3, feat_channels=256),
    roi_head=dict(
        shared_head=dict(_delete_=True, type='ShuffleNetV1SharedHead', groups=3,
                         widen_factor=2.0, norm_eval=True),
        bbox_roi_extractor=dict(out_channels=stage3),
        bbox_head=dict(in_channels=stage4)),
    # The Caffe Faster R-CNN defaults the paper kept: 128 sampled RoIs per training image
    # and 300 proposals at test time (also the MobileNet detection setting). Stage 4 per
    # RoI makes the proposal count the main inference cost.
    train_cfg=dict(rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(max_per_img=300)))
