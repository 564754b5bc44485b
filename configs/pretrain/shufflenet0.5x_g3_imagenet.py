# ShuffleNet 0.5x (g=3): paper 43.2% top-1 error, official release 42.7%.
_base_ = './_base_/shufflenet_imagenet.py'

model = dict(backbone=dict(widen_factor=0.5))
