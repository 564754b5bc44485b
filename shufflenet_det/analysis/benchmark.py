"""CPU latency of ShuffleNet V1 and its peers, measured together.

Shared machines drift, so models are timed in interleaved rounds: every round
runs each candidate once, and a candidate's statistics come from all rounds.
Ratios between rows of one run are what the targets compare. The ceiling is
a dense fp32 matrix product measured in the same run with the same threads.

Complexities are multiply-adds (the paper's "FLOPs"); achieved rates below are
multiply-adds per second, and the ceiling is counted the same way (n^3 per
n x n product).
"""
import copy
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch
from mmdet.registry import MODELS
from torch import nn

from ..config import load_config
from ..deploy import export_onnx, int8_path, onnxruntime_session, quantize_int8
from ..errors import ConfigError
from ..models import ShuffleNetClassifier
from .benchmark_inputs import (check_at_least, check_peers, check_report_paths, parse_sizes,
                               parse_specs)
from .report import write_report

# (height, width) of the paper's Table 8
TABLE8_SIZES = ((224, 224), (480, 640), (720, 1280))
DEPLOY = '+in-place merge (deploy)'
BACKBONE_PEERS = ('mobilenet_v2', 'mobilenet_v3_large', 'shufflenet_v2_x1_0',
                  'shufflenet_v2_x2_0', 'resnet18')
# switch_to_deploy options of each fast-path row after '+fuse BN' (each adds one step).
ABLATION_OPTIONS = {
    '+channels_last': dict(pointwise='conv', merge_inplace=False),
    '+matmul 1x1': dict(merge_inplace=False),
    DEPLOY: dict(),
    'deploy, ATen shuffle': dict(fast_shuffle=True),
}
ABLATION_STEPS = ('plain', '+fuse BN', *ABLATION_OPTIONS)


@dataclass
class Candidate:
    """One row: a callable timed on a fixed input."""
    name: str
    variant: str
    input_desc: str
    run: Callable[[], object]
    macs: Optional[int] = None
    reference: Optional[tuple[str, str]] = None  # (name, variant) of the row compared with
    times: list = field(default_factory=list)


def check_device(device: str) -> None:
    """``--device`` must be ``'cpu'``, or ``'cuda[:N]'`` where torch sees a GPU.

    Raises:
        ConfigError: one line naming the value.
    """
    if not device.startswith(('cuda', 'cpu')):
        raise ConfigError(f"--device takes 'cpu' or 'cuda[:N]', got {device!r}")
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise ConfigError(f'--device {device}: torch sees no CUDA GPU here')


def device_name(device: str) -> str:
    """The GPU's name, or the CPU with its thread count."""
    if device.startswith('cuda'):
        return torch.cuda.get_device_name(torch.device(device))
    return f'cpu, {torch.get_num_threads()} threads'


def synchronize(device: str) -> None:
    """Wait for a CUDA device's queued work (nothing on the CPU)."""
    if device.startswith('cuda'):
        torch.cuda.synchronize(device)


def synchronized(fn: Callable[[], object], device: str) -> Callable[[], object]:
    """``fn`` that returns only once a CUDA device has finished its work (as is)."""
    if not device.startswith('cuda'):
        return fn
    return lambda: (fn(), synchronize(device))[0]


def matmul_macs_per_second(threads: int, n: int = 1024, repeats: int = 10,
                           device: str = 'cpu') -> float:
    """Multiply-adds per second of an n x n fp32 matrix product (the ceiling)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    product = synchronized(lambda: a @ b, device)
    for _ in range(3):
        product()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        product()
        times.append(time.perf_counter() - t)
    return n ** 3 / statistics.median(times)


def time_interleaved(candidates: list[Candidate], warmup: int, repeats: int,
                     progress: Callable[[str], None] = print) -> None:
    """Fill each candidate's ``times`` (seconds): ``warmup`` untimed rounds, then
    ``repeats`` rounds that run every candidate once."""
    with torch.no_grad():
        for i in range(warmup):
            for c in candidates:
                c.run()
        for r in range(repeats):
            for c in candidates:
                t = time.perf_counter()
                c.run()
                c.times.append(time.perf_counter() - t)
            if progress and (r + 1) % max(1, repeats // 4) == 0:
                progress(f'  round {r + 1}/{repeats}')


def summarize(c: Candidate, ceiling: float, reference_ms: Optional[float]) -> dict:
    ts = sorted(c.times)
    q1, med, q3 = (statistics.quantiles(ts, n=4) if len(ts) >= 4 else (ts[0], ts[len(ts) // 2],
                                                                       ts[-1]))
    row = dict(model=c.name, variant=c.variant, input=c.input_desc,
               median_ms=round(1e3 * med, 2), p25_ms=round(1e3 * q1, 2), p75_ms=round(1e3 * q3, 2),
               mflops=None if c.macs is None else round(c.macs / 1e6, 1))
    if c.macs is not None:
        rate = c.macs / med
        row['gflops_per_s'] = round(rate / 1e9, 2)
        if not c.variant.startswith('onnxruntime'):  # the ceiling is PyTorch's own matmul
            row['pct_of_torch_matmul'] = round(100 * rate / ceiling, 1)
    if reference_ms:
        row['ratio'] = round(1e3 * med / reference_ms, 3)
        row['reference'], row['reference_variant'] = c.reference
    return row


# --------------------------------------------------------------------------- backbones


def shufflenet_classifier(groups: int, widen_factor: float, init: bool = True) -> nn.Module:
    """The ImageNet classifier in eval mode, initialised as the official code does."""
    model = ShuffleNetClassifier(
        backbone=dict(type='ShuffleNetV1', groups=groups, widen_factor=widen_factor,
                      out_indices=(2, )), data_preprocessor=dict(type='BaseDataPreprocessor'))
    if init:
        model.init_weights()
    return model.eval()


def ablation_models(groups: int, widen_factor: float) -> dict[str, nn.Module]:
    """The classifier after each fast-path step, cumulatively.

    Every row is a freshly built model with the plain model's weights, converted by
    ``switch_to_deploy`` with that row's options (``+fuse BN`` by mmcv's
    ``fuse_conv_bn`` alone).
    """
    from mmcv.cnn import fuse_conv_bn
    plain = shufflenet_classifier(groups, widen_factor)
    weights = plain.state_dict()

    def fresh() -> nn.Module:
        model = shufflenet_classifier(groups, widen_factor, init=False)
        model.load_state_dict(weights)
        return model.eval()

    steps = {'plain': plain, '+fuse BN': fuse_conv_bn(fresh())}
    for label, options in ABLATION_OPTIONS.items():
        steps[label] = fresh().switch_to_deploy(**options)
    return steps


def torchvision_classifier(name: str) -> nn.Module:
    import torchvision
    return getattr(torchvision.models, name)(weights=None).eval()


# --------------------------------------------------------------------------- runs


def _macs(model: nn.Module, x: torch.Tensor) -> Optional[int]:
    from .complexity import count_complexity
    try:
        return count_complexity(model, x)['flops']
    except Exception:  # tracing fails for some peer models; the row then has no rate
        return None


def onnx_rows(name: str, model: nn.Module, x: torch.Tensor, desc: str, macs: Optional[int],
              reference: Optional[tuple[str, str]], workdir: str, int8: bool) -> list[Candidate]:
    """``model`` exported and run in ONNX Runtime (fp32), and quantized (int8) if asked.

    The int8 row is compared with the fp32 row of the same model. Its calibration uses
    eight random images: the weights are random too, and only the speed is measured.
    """
    path = f'{workdir}/{name}_{desc}.onnx'
    export_onnx(model, path, tuple(x.shape))
    feed = {'input': x.numpy()}
    session = onnxruntime_session(path, torch.get_num_threads(), spinning=False)
    rows = [Candidate(name, 'onnxruntime', desc, lambda: session.run(None, feed), macs,
                      reference)]
    if int8:
        calibration = [np.random.default_rng(i).uniform(0, 255, x.shape).astype(np.float32)
                       for i in range(8)]
        quantize_int8(path, int8_path(path), calibration, len(calibration), progress=None)
        quantized = onnxruntime_session(int8_path(path), torch.get_num_threads(), spinning=False)
        rows.append(Candidate(name, 'onnxruntime int8', desc,
                              lambda: quantized.run(None, feed), macs, (name, 'onnxruntime')))
    return rows


def backbone_candidates(specs, peers, height, width, batch, ablation, onnx, compile_,
                        workdir, int8=False) -> list[Candidate]:
    """Peers and ShuffleNets (each fast-path step with ``ablation``), eager and in ONNX
    Runtime. Eager rows are compared with MobileNetV2 eager, ONNX Runtime rows with
    MobileNetV2 in ONNX Runtime."""
    x = torch.randn(batch, 3, height, width)
    desc = f'{batch}x3x{height}x{width}'
    has_ref = 'mobilenet_v2' in peers
    rows = []

    def add(name, variant, model, macs, exported=False):
        rows.append(Candidate(name, variant, desc, lambda m=model: m(x), macs,
                              ('mobilenet_v2', 'torchvision') if has_ref else None))
        if onnx and exported:
            rows.extend(onnx_rows(name, model, x, desc, macs, ('mobilenet_v2', 'onnxruntime')
                                  if has_ref else None, workdir, int8))

    for peer in peers:
        model = torchvision_classifier(peer)
        add(peer, 'torchvision', model, _macs(model, x), exported=True)
    for groups, widen in parse_specs(specs):
        name = f'shufflenet_v1_{widen}x_g{groups}'
        steps = ablation_models(groups, widen)
        macs = _macs(steps['plain'], x)
        for label in ABLATION_STEPS if ablation else ('plain', DEPLOY):
            add(name, label, steps[label], macs, exported=label == 'plain')
        if compile_:
            compiled = copy.deepcopy(steps['plain']).switch_to_deploy(compile=True)
            with torch.no_grad():
                compiled(x)
            add(name, 'deploy(compile=True)', compiled, macs)
    return rows


def run(candidates_fn, threads_list, warmup, repeats, progress=print,
        device: str = 'cpu') -> list[dict]:
    """Time the candidates at each thread count; rows with ratios and efficiency (against
    the matrix product on ``device``, where the candidates run)."""
    results = []
    for threads in threads_list:
        torch.set_num_threads(threads)
        progress(f'{threads} thread(s): measuring the dense matmul ceiling')
        ceiling = matmul_macs_per_second(threads, device=device)
        progress(f'  {ceiling / 1e9:.1f} G multiply-adds/s; building models')
        torch.set_num_threads(threads)
        candidates = candidates_fn()
        progress(f'  timing {len(candidates)} candidates, {warmup} warm-up + {repeats} rounds')
        time_interleaved(candidates, warmup, repeats, progress)
        medians = {(c.name, c.variant, c.input_desc): statistics.median(c.times) * 1e3
                   for c in candidates}
        for c in candidates:
            ref_ms = medians.get((*c.reference, c.input_desc)) if c.reference else None
            row = summarize(c, ceiling, ref_ms)
            row.update(threads=threads, matmul_gflops_per_s=round(ceiling / 1e9, 1))
            if device != 'cpu':
                row['device'] = device_name(device)
            results.append(row)
    return results


def markdown_table(rows: list[dict]) -> str:
    head = ('| model | variant | input | threads | median ms (p25-p75) | MFLOPs | GFLOP/s | '
            '% of PyTorch matmul rate | ratio to peer |')
    lines = [head, '|' + '---|' * 9]
    devices = sorted({r['device'] for r in rows if 'device' in r})
    if devices:  # GPU rows: the device above the table, since figures must name it
        lines.insert(0, f'Device: {", ".join(devices)} (threads are CPU threads)\n')
    for r in rows:
        ratio = '' if r.get('ratio') is None else \
            f'{r["ratio"]:.2f} ({r["reference"]}, {r["reference_variant"]})'
        lines.append(
            f'| {r["model"]} | {r["variant"]} | {r["input"]} | {r["threads"]} | '
            f'{r["median_ms"]:.1f} ({r["p25_ms"]:.1f}-{r["p75_ms"]:.1f}) | '
            f'{"" if r["mflops"] is None else r["mflops"]} | {r.get("gflops_per_s", "")} | '
            f'{r.get("pct_of_torch_matmul", "")} | {ratio} |')
    return '\n'.join(lines)


def benchmark_backbones(specs: list[str], peers: list[str], sizes: list[str], batch: int = 1,
                        ablation: bool = False, onnx: bool = False, compile_: bool = False,
                        threads: tuple[int, ...] = (1, 2), warmup: int = 3, repeats: int = 20,
                        out_md: Optional[str] = None, out_json: Optional[str] = None,
                        int8: bool = False,
                        progress: Callable[[str], None] = print) -> list[dict]:
    """``tools/benchmark.py backbone``: classifiers at each size, timed together, reported.

    Raises:
        ConfigError: before anything is built, for a value that cannot work.
    """
    check_report_paths(out_md, out_json)
    check_at_least(1, threads=threads, repeats=repeats, batch=batch)
    check_at_least(0, warmup=warmup)
    parse_specs(specs)
    check_peers(peers)
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for h, w in parse_sizes(sizes):
            progress(f'input {batch}x3x{h}x{w}')
            rows += run(lambda h=h, w=w: backbone_candidates(
                specs, peers, h, w, batch, ablation, onnx, compile_, workdir, int8),
                threads, warmup, repeats, progress)
    write_report(rows, markdown_table(rows), out_md, out_json, progress)
    return rows
