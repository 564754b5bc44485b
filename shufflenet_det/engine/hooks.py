"""Training hooks."""
import itertools
import math

import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch.nn.modules.batchnorm import _BatchNorm


def _scalar(value) -> float:
    # A loss a train step returns is still in the autograd graph: float() of it warns.
    return value.detach().item() if hasattr(value, 'detach') else float(value)


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop training at the first iteration whose loss is NaN or infinite, before a
    checkpoint of NaN weights is written (MMEngine would train on to the end)."""

    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not outputs or 'loss' not in outputs or math.isfinite(loss := _scalar(outputs['loss'])):
            return
        parts = ', '.join(f'{k}={_scalar(v):.4g}' for k, v in outputs.items())
        raise RuntimeError(
            f'loss became {loss} at epoch {runner.epoch + 1}, iteration {runner.iter + 1} '
            f'({parts}); stopping instead of training on. Lower the learning rate, enable '
            'gradient clipping (optim_wrapper.clip_grad=dict(max_norm=10)), or check the data.')


@HOOKS.register_module()
class BNRecalibrationHook(Hook):
    """Re-estimate BN statistics after the last training iteration or epoch, before the
    final checkpoint and validation, as the official ShuffleNet recipe ends: the BN
    layers in train mode get the exact average over ``num_iters`` training batches (one
    pass by default), averaged across ranks; frozen and ``norm_eval`` layers keep theirs.
    """

    priority = 'ABOVE_NORMAL'  # before CheckpointHook (VERY_LOW) saves the final model

    def __init__(self, num_iters: int | None = None) -> None:
        if num_iters is not None and num_iters < 1:
            raise ValueError(f'num_iters must be positive, got {num_iters}')
        self.num_iters = num_iters

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.is_last_train_iter(runner):  # the last epoch's too: before its hooks save
            self.recalibrate(runner)

    def recalibrate(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        was_training = model.training
        model.train()
        batch_norms = [m for m in model.modules()
                       if isinstance(m, _BatchNorm) and m.track_running_stats]
        norms = [m for m in batch_norms if m.training]
        total, kept = self.num_iters or len(runner.train_dataloader), len(batch_norms) - len(norms)
        if norms:
            runner.logger.info(
                f'BNRecalibrationHook: re-estimating {len(norms)} BN layers over {total} batches'
                + (f'; {kept} in eval mode (frozen or norm_eval) keep their statistics'
                   if kept else ''))
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # an exact cumulative average
        batches = itertools.chain.from_iterable(itertools.repeat(runner.train_dataloader))
        with torch.no_grad():
            for batch in itertools.islice(batches, total if norms else 0):
                model(**model.data_preprocessor(batch, True), mode='tensor')
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
            all_reduce(m.running_mean, op='mean')
            all_reduce(m.running_var, op='mean')
        model.train(was_training)


@HOOKS.register_module()
class RecordInputConventionHook(Hook):
    """Write the model's input normalisation into every checkpoint's ``meta``, which
    detectors initialised from the checkpoint check their preprocessor against."""

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        convention = getattr(model.data_preprocessor, 'input_convention', None)
        if callable(convention):
            checkpoint.setdefault('meta', {})['input_convention'] = convention()
