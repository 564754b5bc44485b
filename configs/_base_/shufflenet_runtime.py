# What every shufflenet_det detection config adds to its mmdet:: bases.
custom_imports = dict(imports=['shufflenet_det'], allow_failed_imports=False)
# Stop at the first NaN/inf loss; MMEngine would otherwise train on to the end on NaN.
custom_hooks = [dict(type='NonFiniteLossHook')]
# Each root config also sets default_hooks.checkpoint.type = 'ResumableCheckpointHook' (atomic
# checkpoints with random generator states, for exact --resume) in its own body: mmdet's
# default_runtime already defines default_hooks, and MMEngine refuses a key from two bases.
