# ShuffleNet 1.5x (g=3): paper 28.5% top-1 error, official release 28.4%.
_base_ = './_base_/shufflenet_imagenet.py'

model = dict(backbone=dict(widen_factor=1.5))
