"""Training hooks."""
import math

from mmdet.registry import HOOKS
from mmengine.hooks import Hook


def _scalar(value) -> float:
    """A logged value as a float. The loss tensors a train step returns are still part
    of the autograd graph; ``float()`` of such a tensor makes torch warn."""
    return value.detach().item() if hasattr(value, 'detach') else float(value)


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop training at the first iteration whose loss is NaN or infinite.

    MMEngine otherwise keeps training on NaN weights until the end, and evaluation
    only reports that the results are empty.
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not outputs or 'loss' not in outputs:
            return
        loss = _scalar(outputs['loss'])
        if math.isfinite(loss):
            return
        parts = ', '.join(f'{k}={_scalar(v):.4g}' for k, v in outputs.items())
        raise RuntimeError(
            f'loss became {loss} at epoch {runner.epoch + 1}, iteration {runner.iter + 1} '
            f'({parts}); stopping instead of training on. Lower the learning rate, enable '
            'gradient clipping (optim_wrapper.clip_grad=dict(max_norm=10)), or check the data.')


@HOOKS.register_module()
class BNRecalibrationHook(Hook):
    """Re-estimate BN statistics once, after the last training iteration or epoch.

    The official ShuffleNet recipe ends with one pass that only recomputes BN
    statistics with the final weights. Here the statistics of every BN layer that
    trains are reset and averaged (``momentum=None``, an exact cumulative average)
    over ``num_iters`` training batches in train mode, without gradients, then
    averaged across ranks. BN layers that ``model.train()`` leaves in eval mode
    (frozen stages, ``norm_eval=True``) keep their statistics: they never update
    them in training either. It runs before the final checkpoint is saved and
    before the final validation.

    Args:
        num_iters (int, optional): Batches to average over. Default: one pass
            over the training dataloader.
    """

    priority = 'ABOVE_NORMAL'  # before CheckpointHook (VERY_LOW) saves the final model

    def __init__(self, num_iters: int | None = None) -> None:
        if num_iters is not None and num_iters < 1:
            raise ValueError(f'num_iters must be positive, got {num_iters}')
        self.num_iters = num_iters

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        from mmengine.runner import IterBasedTrainLoop
        if isinstance(runner.train_loop, IterBasedTrainLoop) and runner.iter + 1 == runner.max_iters:
            self.recalibrate(runner)

    def after_train_epoch(self, runner) -> None:
        from mmengine.runner import IterBasedTrainLoop
        if not isinstance(runner.train_loop, IterBasedTrainLoop) and \
                runner.epoch + 1 == runner.max_epochs:
            self.recalibrate(runner)

    def recalibrate(self, runner) -> None:
        import torch
        from mmengine.dist import all_reduce
        from mmengine.model import is_model_wrapper
        from torch.nn.modules.batchnorm import _BatchNorm

        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        was_training = model.training
        model.train()  # frozen and norm_eval BN layers stay in eval mode: they are left alone
        batch_norms = [m for m in model.modules()
                       if isinstance(m, _BatchNorm) and m.track_running_stats]
        norms = [m for m in batch_norms if m.training]
        if not norms:
            model.train(was_training)
            return
        momenta = [m.momentum for m in norms]
        loader = runner.train_dataloader
        total = self.num_iters or len(loader)
        kept = len(batch_norms) - len(norms)
        runner.logger.info(f'BNRecalibrationHook: re-estimating {len(norms)} BN layers over '
                           f'{total} batches' + (f'; {kept} in eval mode (frozen or norm_eval) '
                                                 'keep their statistics' if kept else ''))
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        done = 0
        with torch.no_grad():
            while done < total:
                for batch in loader:
                    data = model.data_preprocessor(batch, True)
                    model(**data, mode='tensor')
                    done += 1
                    if done >= total:
                        break
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
            all_reduce(m.running_mean, op='mean')
            all_reduce(m.running_var, op='mean')
        model.train(was_training)


@HOOKS.register_module()
class RecordInputConventionHook(Hook):
    """Write the model's input normalisation into every checkpoint's ``meta``.

    Detectors initialised from the checkpoint (``ShuffleNetPretrained``) then
    check that their data preprocessor matches it.
    """

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        from mmengine.model import is_model_wrapper
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        convention = getattr(model.data_preprocessor, 'input_convention', None)
        if callable(convention):
            checkpoint.setdefault('meta', {})['input_convention'] = convention()
