# ShuffleNet 2x (g=3) in the paper's layout at 300 input (Table 7: 18.7 mmAP).
_base_ = ['./faster_rcnn_shufflenet2x_coco.py', './_base_/coco_300_pipelines.py']

train_dataloader = dict(dataset=dict(pipeline={{_base_.train_pipeline_300}}))
val_dataloader = dict(dataset=dict(pipeline={{_base_.test_pipeline_300}}))
test_dataloader = val_dataloader
