# Faster R-CNN with ShuffleNet 2x (g=3) and the mobile FPN at 600 input (mmdet's 1x schedule).
_base_ = [
    './_base_/models/faster_rcnn_shufflenet_fpn.py',
    './_base_/coco_600.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    './_base_/shufflenet_runtime.py',
]
