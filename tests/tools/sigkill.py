"""A hook that kills its own training process, for the kill-and-resume test.

The test needs a kill at a known point of the run, however busy the machine: a kill from
outside, timed by watching the work dir, could come late or never on a loaded machine.
SIGKILL from inside is the same kill (no handler, no clean-up runs), at a chosen iteration.
Loaded in the training process through the config's ``custom_imports``."""
import os
import signal

from mmdet.registry import HOOKS
from mmengine.hooks import Hook

ENV_VAR = 'SHUFFLENET_DET_TEST_SIGKILL_AFTER_ITER'


@HOOKS.register_module()
class SigkillAfterIterationHook(Hook):
    """Kill this process with SIGKILL once the training iteration that the environment
    variable :data:`ENV_VAR` names (counted from 1 over the whole run) is done; without
    the variable, do nothing."""

    priority = 'LOWEST'  # after every other hook's work for the iteration

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        last = os.environ.get(ENV_VAR)
        if last is not None and runner.iter + 1 == int(last):
            os.kill(os.getpid(), signal.SIGKILL)
