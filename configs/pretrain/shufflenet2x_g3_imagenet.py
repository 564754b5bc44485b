# ShuffleNet 2x (g=3): paper 26.3% top-1 error, official release 25.9%.
_base_ = './_base_/shufflenet_imagenet.py'

model = dict(backbone=dict(widen_factor=2.0))
