# ImageNet pretraining of ShuffleNet V1 with the paper's recipe (Sec. 4), completed with
# the official release's details: SGD momentum 0.9, lr 0.5 for 1024 images per
# iteration decayed linearly to 0 over 3e5 iterations, weight decay 4e-5 on conv and
# linear weights only, label smoothing 0.1, colour jitter, and a final pass that
# re-estimates BN statistics.
custom_imports = dict(imports=['shufflenet_det'], allow_failed_imports=False)
default_scope = 'mmdet'

model = dict(
    type='ShuffleNetClassifier',
    backbone=dict(type='ShuffleNetV1', groups=3, widen_factor=1.0, out_indices=(2, )),
    num_classes=1000,
    label_smoothing=0.1,
    # The official recipe's input: BGR in 0-255, not normalised. The converted official
    # checkpoints and the detection configs use the same convention, so this project's
    # checkpoints drop into the detectors unchanged (it is recorded in each checkpoint).
    data_preprocessor=dict(type='ClsDataPreprocessor', mean=(0.0, 0.0, 0.0),
                           std=(1.0, 1.0, 1.0), rgb_to_bgr=True))

data_root = 'data/imagenet/'
train_pipeline = [
    # The paper's "slightly less aggressive scale augmentation" than ResNeXt's: crops of
    # 25-100% of the image area instead of torchvision's default 8-100%.
    dict(type='RandomResizedCrop', size=224, scale=(0.25, 1.0), antialias=True),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(type='RandomHorizontalFlip', p=0.5),
]
test_pipeline = [
    dict(type='Resize', size=256, antialias=True),  # shorter side 256
    dict(type='CenterCrop', size=224),
]
train_dataloader = dict(
    batch_size=128, num_workers=8, pin_memory=True, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageNetFolder', data_root=data_root, data_prefix=dict(img='train/'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128, num_workers=8, pin_memory=True, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageNetFolder', data_root=data_root, data_prefix=dict(img='val/'),
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='TopKAccuracy', topk=(1, 5))
test_evaluator = val_evaluator

# 8 GPUs x 128 = 1024 images per iteration; --auto-scale-lr rescales lr 0.5 linearly
# for another total batch size.
max_iters = 300000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.5, momentum=0.9, weight_decay=4e-5),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0, end=max_iters),
]
auto_scale_lr = dict(enable=False, base_batch_size=1024)

custom_hooks = [
    dict(type='NonFiniteLossHook'),
    dict(type='RecordInputConventionHook'),
    # The official last step: one pass over the training data re-estimating BN
    # statistics with the final weights. Delete this entry to skip it.
    dict(type='BNRecalibrationHook'),
]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Atomic checkpoints with generator states (shufflenet_det.engine.checkpointing).
    checkpoint=dict(type='ResumableCheckpointHook', by_epoch=False, interval=10000,
                    max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(cudnn_benchmark=True, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
log_processor = dict(by_epoch=False)
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
log_level = 'INFO'
load_from = None
resume = False
