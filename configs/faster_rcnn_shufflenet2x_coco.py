# Faster R-CNN with ShuffleNet 2x (g=3) in the paper's C4 layout at 600 input (Table 7:
# 25.0 mmAP). mmdet's 1x schedule: 12 epochs, lr 0.02 for 16 images (8 GPUs x 2), decayed 10x
# after epochs 8 and 11; --auto-scale-lr scales the lr to other batch sizes.
_base_ = [
    './_base_/models/faster_rcnn_shufflenet_c4.py',
    './_base_/coco_600.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    './_base_/shufflenet_runtime.py',
]
