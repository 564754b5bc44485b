# Faster R-CNN with ShuffleNet 2x (g=3) in the paper's layout (Table 7: 25.0 mmAP at 600).
# Stages 2-3 (stride 16) feed the RPN and RoIAlign; Stage 4 runs per RoI as the shared
# head (the "C4" layout of the Caffe Faster R-CNN the paper used), then pooling and
# the box classifier. Stage 4 does not run on the whole image.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50-caffe-c4.py',
    './_base_/coco_600.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    './_base_/shufflenet_runtime.py',
]
from shufflenet_det.models import shufflenet_v1_channels  # noqa: E402

groups, widen_factor = 3, 2.0
stem, stage2, stage3, stage4 = shufflenet_v1_channels(groups, widen_factor)
# A converted official checkpoint (README, "Pretrained weights"); without it the
# detector trains from scratch and says so in the log.
pretrained = 'checkpoints/shufflenet_v1_2x_g3_imagenet.pth'

model = dict(
    # Megvii's weights take BGR images in 0-255, not normalised; the initialiser checks
    # this against the checkpoint's recorded input convention.
    data_preprocessor=dict(mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0], bgr_to_rgb=False),
    init_cfg=dict(type='ShuffleNetPretrained', checkpoint=pretrained, missing_ok=True),
    # 2 images per GPU are too few for BN statistics: keep the ImageNet ones (norm_eval),
    # still training the affine parameters; the stem is generic enough to freeze.
    backbone=dict(
        _delete_=True, type='ShuffleNetV1', groups=groups, widen_factor=widen_factor,
        num_stages=2, out_indices=(2, ), frozen_stages=0, norm_eval=True),
    # A 256-channel RPN conv: the Caffe default of 512 would cost more than the backbone.
    rpn_head=dict(in_channels=stage3, feat_channels=256),
    roi_head=dict(
        shared_head=dict(_delete_=True, type='ShuffleNetV1SharedHead', groups=groups,
                         widen_factor=widen_factor, norm_eval=True),
        bbox_roi_extractor=dict(out_channels=stage3),
        bbox_head=dict(in_channels=stage4)),
    # The Caffe Faster R-CNN defaults the paper kept: 128 sampled RoIs per training image
    # and 300 proposals at test time (also the MobileNet detection setting). Stage 4 per
    # RoI makes the proposal count the main inference cost.
    train_cfg=dict(rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(max_per_img=300)))

# 1x schedule: 12 epochs, lr 0.02 for 16 images (8 GPUs x 2), decayed 10x after epochs 8
# and 11 (mmdet's schedule_1x). --auto-scale-lr scales the lr to other batch sizes.
auto_scale_lr = dict(enable=False, base_batch_size=16)

# Atomic checkpoints with generator states, so --resume repeats the run (README, Resuming).
default_hooks = dict(checkpoint=dict(type='ResumableCheckpointHook'))
