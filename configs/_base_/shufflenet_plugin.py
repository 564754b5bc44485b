# What every shufflenet_det config adds, whatever its bases: the plugin's modules, and a stop
# at the first NaN/inf loss (MMEngine would otherwise train on to the end on NaN weights).
custom_imports = dict(imports=['shufflenet_det'], allow_failed_imports=False)
custom_hooks = [dict(type='NonFiniteLossHook')]
