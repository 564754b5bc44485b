"""The legacy (TorchScript-based) ``torch.onnx.export``, on every supported torch.

The graphs of this package are written for the TorchScript exporter (custom symbolics,
constant shuffle permutations). torch >= 2.5 takes ``dynamo=`` and from 2.9 defaults to
the dynamo exporter, so it must be asked for ``dynamo=False``; torch 2.1 (the classic
MMDetection stack) has only the TorchScript exporter and no such argument.
"""
import inspect

import torch

_HAS_DYNAMO_ARGUMENT = 'dynamo' in inspect.signature(torch.onnx.export).parameters


def torch_onnx_export_legacy(model, args, f, **kwargs) -> None:
    """``torch.onnx.export(model, args, f, dynamo=False, **kwargs)``: the TorchScript exporter
    on torch >= 2.5, where ``dynamo=`` exists; plain ``torch.onnx.export`` before."""
    if _HAS_DYNAMO_ARGUMENT:
        kwargs['dynamo'] = False
    torch.onnx.export(model, args, f, **kwargs)
