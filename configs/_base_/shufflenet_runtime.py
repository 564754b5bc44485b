# mmdet's default runtime with the plugin, and checkpoints written by ResumableCheckpointHook:
# atomic files with the random generator states, so that --resume repeats the run
# (docs/train_test_coco.md, "Resuming and safe loading"). Configs that extend a complete mmdet
# config (which brings its own default_runtime) take ./shufflenet_plugin.py instead and set the
# hook themselves: MMEngine refuses a key that two bases define.
_base_ = ['mmdet::_base_/default_runtime.py', './shufflenet_plugin.py']

default_hooks = dict(checkpoint=dict(type='ResumableCheckpointHook'))
