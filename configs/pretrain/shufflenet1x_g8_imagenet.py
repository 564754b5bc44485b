# ShuffleNet 1x (g=8): paper 32.4% top-1 error, official release 32.0%.
_base_ = './_base_/shufflenet_imagenet.py'

model = dict(backbone=dict(groups=8))
