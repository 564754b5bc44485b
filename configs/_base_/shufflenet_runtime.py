# What every shufflenet_det detection config adds to its mmdet:: bases.
custom_imports = dict(imports=['shufflenet_det'], allow_failed_imports=False)
# Stop at the first NaN/inf loss; MMEngine would otherwise train on to the end on NaN.
custom_hooks = [dict(type='NonFiniteLossHook')]
