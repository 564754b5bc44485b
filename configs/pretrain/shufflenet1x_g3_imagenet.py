# ShuffleNet 1x (g=3): paper 32.6% top-1 error, official release 32.2%.
_base_ = './_base_/shufflenet_imagenet.py'
