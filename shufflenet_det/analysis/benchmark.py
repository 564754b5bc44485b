"""``tools/benchmark.py``'s measurements, random weights throughout: latency next to
torchvision's peers, in interleaved rounds (each runs every candidate once, so that a shared
machine's drift hits all rows alike; the RPN's NMS lifted on both sides, so that each RoI head
sees its configured proposal count), training images/s, and the ImageNet loader's images/s.
"""
import copy
import datetime
import difflib
import functools
import itertools
import json
import logging
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import cv2
import numpy as np
import torch
import torchvision
from mmcv.cnn import fuse_conv_bn
from mmdet.registry import DATASETS, MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.optim import build_optim_wrapper
from mmengine.runner import set_random_seed

from ..config import load_config
from ..datasets.synthetic_shapes import draw_image
from ..deploy import (deploy_detector, export_detector_onnx, export_onnx, fp32_nodes_of,
                      int8_path, onnxruntime_session, quantize_int8, torch_onnx_export_legacy)
from ..errors import ConfigError
from ..fileio import atomic_open, check_writable
from ..models.backbones import GROUPS, WIDEN_FACTORS
from .complexity import build_classifier, count_complexity, detector_complexity, detector_inputs

BACKBONE_PEERS = ('mobilenet_v2', 'mobilenet_v3_large', 'shufflenet_v2_x1_0',
                  'shufflenet_v2_x2_0', 'resnet18')
DEPLOY = '+in-place merge (deploy)'
# switch_to_deploy options of each fast-path row after '+fuse BN' (each adds one step).
ABLATION_OPTIONS = {'+channels_last': dict(pointwise='conv', merge_inplace=False),
                    '+matmul 1x1': dict(merge_inplace=False), DEPLOY: dict(),
                    'deploy, ATen shuffle': dict(fast_shuffle=True)}
ABLATION_STEPS = ('plain', '+fuse BN', *ABLATION_OPTIONS)
TORCHVISION_320 = 'fasterrcnn_mobilenet_v3_large_320_fpn'


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
    result: object = None  # what the last run returned


def check_options(out_md: Optional[str], out_json: Optional[str], device: str = 'cpu',
                  configs: Sequence[str] = (), cfg_options: Optional[dict] = None,
                  **counts) -> None:
    """Raise ConfigError unless the reports can be written, each count (or item of a list of
    counts) is 1 or more (0 for three; None passes), torch sees ``device``, the configs read."""
    check_writable(out_md, '--out-md')
    check_writable(out_json, '--out-json')
    for name, value in counts.items():
        minimum = 0 if name in ('warmup', 'workers', 'synthetic') else 1
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is not None and item < minimum:
                raise ConfigError(f'--{name.replace("_", "-")} {item}: must be {minimum} or more')
    if not device.startswith(('cuda', 'cpu')):
        raise ConfigError(f"--device takes 'cpu' or 'cuda[:N]', got {device!r}")
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise ConfigError(f'--device {device}: torch sees no CUDA GPU here')
    for config in configs:
        load_config(config, cfg_options)


def parse_size(text: str, expected: str, one_side: bool = False) -> tuple[int, int]:
    """``'600x800'`` -> (600, 800) (``one_side``: ``'256'`` -> (256, 256)), else ConfigError."""
    parts = text.lower().split('x')
    if len(parts) in ((1, 2) if one_side else (2, )) and all(p.isdigit() and int(p) > 0
                                                             for p in parts):
        return int(parts[0]), int(parts[-1])
    raise ConfigError(f'{expected}, got {text!r}')


def without_checkpoints(cfg):
    """``cfg`` with every ``init_cfg`` that reads a checkpoint removed."""
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(without_checkpoints(v) for v in cfg)
    if not isinstance(cfg, dict):
        return cfg
    return type(cfg)({k: without_checkpoints(v) for k, v in cfg.items()
                      if not (k == 'init_cfg' and isinstance(v, dict) and 'checkpoint' in v)})


def build_randomly_initialised(model_cfg):
    """The model initialised as its modules do without a checkpoint (a benchmark needs none)."""
    model = MODELS.build(without_checkpoints(model_cfg))
    model.init_weights()
    return model


def time_rounds(candidates: list[Candidate], warmup: int, repeats: int,
                progress: Optional[Callable[[str], None]] = print, device: str = 'cpu') -> None:
    """Fill each candidate's ``times`` (seconds) in ``repeats`` rounds after ``warmup`` untimed
    ones; each round runs every candidate once (a CUDA device synchronised around it)."""
    sync = torch.cuda.synchronize if device.startswith('cuda') else lambda device: None
    for r in range(-warmup, repeats):
        for c in candidates:
            sync(device)
            start = time.perf_counter()
            c.result = c.run()
            sync(device)
            if r >= 0:
                c.times.append(time.perf_counter() - start)
        if progress and r >= 0 and (r + 1 == repeats or (r + 1) % max(1, repeats // 4) == 0):
            progress(f'  round {r + 1}/{repeats}')


def onnx_candidates(name: str, path: str, feed: dict, desc: str, macs: Optional[int],
                    reference: Optional[tuple[str, str]], int8: bool = False,
                    fp32_nodes: Sequence[str] = ()) -> list[Candidate]:
    """The graph at ``path`` in ONNX Runtime; with ``int8`` also its quantized version, which
    is compared with the fp32 row and calibrated on eight random images (speed only)."""
    rows = []
    for variant, graph in [('onnxruntime', path), ('onnxruntime int8', int8_path(path))][:1 + int8]:
        if graph != path:
            calibration = [np.random.default_rng(i).uniform(0, 255, x.shape).astype(np.float32)
                           for i in range(1, 9) for x in feed.values()]
            quantize_int8(path, graph, calibration, 8, nodes_to_exclude=fp32_nodes, progress=None)
            reference = (name, 'onnxruntime')
        session = onnxruntime_session(graph, torch.get_num_threads(), spinning=False)
        rows.append(Candidate(name, variant, desc, lambda s=session: s.run(None, feed), macs,
                              reference))
    return rows


def run(builders: Sequence[Callable[[str], list[Candidate]]], threads_list: Sequence[int],
        warmup: int, repeats: int, out_md: Optional[str], out_json: Optional[str],
        progress: Callable[[str], None] = print, device: str = 'cpu',
        runs: int = 1) -> list[dict]:
    """Build each group of candidates (given a work folder) at each thread count and time
    it, ``runs`` times over, each time built anew; report rows with the median over the
    runs' medians, the quartiles of all rounds, each run's median, ratios and rates."""
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for build, threads in itertools.product(builders, threads_list):
            torch.set_num_threads(threads)
            progress(f'{threads} thread(s): measuring the dense matmul ceiling')
            a, b = torch.randn(1024, 1024, device=device), torch.randn(1024, 1024, device=device)
            matmul = Candidate('matmul', '', '', lambda: a @ b)
            time_rounds([matmul], 3, 10, None, device)
            ceiling = 1024 ** 3 / np.median(matmul.times)
            progress(f'  {ceiling / 1e9:.1f} G multiply-adds/s; building models')
            run_times = []
            for i in range(runs):
                candidates = build(workdir)
                progress(f'  run {i + 1}/{runs}: timing {len(candidates)} candidates, '
                         f'{warmup} warm-up + {repeats} rounds')
                with torch.no_grad():
                    time_rounds(candidates, warmup, repeats, progress, device)
                run_times.append([c.times for c in candidates])
            run_medians = [[float(np.median(times[k])) for times in run_times]
                           for k in range(len(candidates))]
            meds = [float(np.median(m)) for m in run_medians]
            medians = {(c.name, c.variant, c.input_desc): m for c, m in zip(candidates, meds)}
            for k, (c, med) in enumerate(zip(candidates, meds)):
                q1, q3 = np.percentile([t for times in run_times for t in times[k]],
                                       [25, 75]).tolist()
                row = dict(model=c.name, variant=c.variant, input=c.input_desc,
                           median_ms=round(1e3 * med, 2), p25_ms=round(1e3 * q1, 2),
                           p75_ms=round(1e3 * q3, 2), mflops=c.macs and round(c.macs / 1e6, 1),
                           run_medians_ms=[round(1e3 * m, 2) for m in run_medians[k]])
                if c.macs:
                    row['gflops_per_s'] = round(c.macs / med / 1e9, 2)
                    if not c.variant.startswith('onnxruntime'):  # the ceiling is PyTorch's matmul
                        row['pct_of_torch_matmul'] = round(100 * c.macs / med / ceiling, 1)
                reference = c.reference and medians.get((*c.reference, c.input_desc))
                if reference:
                    row.update(ratio=round(med / reference, 3), reference=c.reference[0],
                               reference_variant=c.reference[1])
                row.update(threads=threads, matmul_gflops_per_s=round(ceiling / 1e9, 1))
                if device.startswith('cuda'):
                    row['device'] = torch.cuda.get_device_name(device)
                rows.append(row)
    devices = sorted({r['device'] for r in rows if 'device' in r})  # named above GPU rows
    header = ['model', 'variant', 'input', 'threads', 'median ms (p25-p75)', 'MFLOPs',
              'GFLOP/s', '% of PyTorch matmul rate', 'ratio to peer']
    if runs > 1:
        header[4] = f'median of {runs} runs\' medians, ms (p25-p75 of all rounds; each run)'
    table = markdown(header,
                     [[r['model'], r['variant'], r['input'], r['threads'],
                       f'{r["median_ms"]:.1f} ({r["p25_ms"]:.1f}-{r["p75_ms"]:.1f}'
                       + ('; ' + ', '.join(f'{m:.1f}' for m in r['run_medians_ms'])
                          if runs > 1 else '') + ')', r['mflops'],
                       r.get('gflops_per_s'), r.get('pct_of_torch_matmul'),
                       f'{r["ratio"]:.2f} ({r["reference"]}, {r["reference_variant"]})'
                       if 'ratio' in r else None] for r in rows])
    write_report(rows, (f'Device: {", ".join(devices)} (threads are CPU threads)\n\n'
                        if devices else '') + table, out_md, out_json, progress)
    return rows


def markdown(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """A Markdown table; None cells are empty."""
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    return '\n'.join(lines + ['| ' + ' | '.join('' if c is None else str(c) for c in row) + ' |'
                              for row in rows])


def write_report(rows: list[dict], table: str, out_md: Optional[str] = None,
                 out_json: Optional[str] = None, progress: Callable[[str], None] = print) -> None:
    """Print ``table``; write it under its provenance (the command, commit, date, CPU,
    library versions and GPUs) to ``out_md``, and ``{"provenance": ..., "rows": rows}`` to
    ``out_json``."""
    try:
        commit = subprocess.run(['git', 'describe', '--always', '--abbrev=12', '--exclude=*',
                                 '--dirty= + uncommitted changes'], cwd=Path(__file__).parent,
                                capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ''
    commit = commit or 'unknown (not a git checkout)'
    try:
        cpu = next(line.split(':', 1)[1].strip() for line in
                   Path('/proc/cpuinfo').read_text().splitlines() if line.startswith('model name'))
    except (OSError, StopIteration):
        cpu = platform.processor() or platform.machine()
    versions = {'python': platform.python_version()}
    for name in ('torch', 'torchvision', 'onnxruntime', 'numpy', 'mmcv', 'mmdet'):
        try:  # the module's own version first: it has the build tag (torch 2.11.0+cu130)
            versions[name] = getattr(sys.modules.get(name), '__version__', None) or version(name)
        except PackageNotFoundError:
            pass
    record = dict(command='python ' + shlex.join(sys.argv), commit=commit,
                  date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
                  cpu=f'{cpu}, {os.cpu_count()} cores', versions=versions)
    header = [f'- command: `{record["command"]}`', f'- commit: {commit}',
              f'- date: {record["date"]}', f'- CPU: {record["cpu"]}',
              '- versions: ' + ', '.join(f'{k} {v}' for k, v in versions.items())]
    gpus = sorted({r['device'] for r in rows if not r.get('device', 'cpu').startswith('cpu')})
    if gpus:
        record['gpu'] = ', '.join(gpus)
        header.append(f'- GPU: {record["gpu"]}')
    print(table)
    for path, text in ((out_md, '\n'.join(header) + '\n\n' + table + '\n'),
                       (out_json, json.dumps(dict(provenance=record, rows=rows), indent=2))):
        if path:
            with atomic_open(path) as f:
                f.write(text)
            progress(f'wrote {path}')


def backbone_candidates(specs, peers, height, width, batch, ablation, onnx, compile_, int8,
                        workdir) -> list[Candidate]:
    """Peers, then ShuffleNets (each of :data:`ABLATION_STEPS` with ``ablation``: copies of
    one model, ``+fuse BN`` by mmcv's ``fuse_conv_bn`` alone), eager and in ONNX Runtime,
    compared with MobileNetV2 (where timed) in the same runtime."""
    x, desc, rows = torch.randn(batch, 3, height, width), f'{batch}x3x{height}x{width}', []

    def add(name, variant, model, macs, exported=False):
        rows.append(Candidate(name, variant, desc, lambda: model(x), macs,
                              ('mobilenet_v2', 'torchvision')))
        if onnx and exported:
            path = f'{workdir}/{name}_{desc}.onnx'
            export_onnx(model, path, tuple(x.shape))
            rows.extend(onnx_candidates(name, path, {'input': x.numpy()}, desc, macs,
                                        ('mobilenet_v2', 'onnxruntime'), int8))

    def macs_of(model):
        try:
            return count_complexity(model, x)['flops']
        except Exception:  # tracing fails for some peer models; the row then has no rate
            return None

    for peer in peers:
        model = getattr(torchvision.models, peer)(weights=None).eval()
        add(peer, 'torchvision', model, macs_of(model), exported=True)
    for groups, widen in specs:
        name = f'shufflenet_v1_{widen}x_g{groups}'
        plain = build_classifier(groups, widen)
        plain.init_weights()
        steps = {'plain': plain.eval(), '+fuse BN': fuse_conv_bn(copy.deepcopy(plain))}
        for label, options in ABLATION_OPTIONS.items():
            steps[label] = copy.deepcopy(plain).switch_to_deploy(**options)
        macs = macs_of(plain)
        for label in ABLATION_STEPS if ablation else ('plain', DEPLOY):
            add(name, label, steps[label], macs, exported=label == 'plain')
        if compile_:
            compiled = copy.deepcopy(plain).switch_to_deploy(compile=True)
            with torch.no_grad():
                compiled(x)
            add(name, 'deploy(compile=True)', compiled, macs)
    return rows


def benchmark_backbones(specs: list[str], peers: list[str], sizes: list[str], batch: int = 1,
                        ablation: bool = False, onnx: bool = False, compile_: bool = False,
                        threads: Sequence[int] = (1, 2), warmup: int = 3, repeats: int = 20,
                        out_md: Optional[str] = None, out_json: Optional[str] = None,
                        int8: bool = False, runs: int = 1,
                        progress: Callable[[str], None] = print) -> list[dict]:
    """``tools/benchmark.py backbone``: classifiers at each size, timed together, reported;
    ConfigError before anything is built for a value that cannot work."""
    check_options(out_md, out_json, threads=threads, repeats=repeats, batch=batch,
                  warmup=warmup, runs=runs)
    allowed = (f'WIDTHx_gGROUPS with WIDTH one of {", ".join(f"{w:g}" for w in WIDEN_FACTORS)} '
               f'and GROUPS one of {", ".join(map(str, GROUPS))}, e.g. 1x_g3')
    parsed = []  # (groups, widen factor)
    for text in specs:
        match = re.fullmatch(r'(\d+(?:\.\d+)?)x_g(\d+)', text.lower())
        if not match:
            raise ConfigError(f'--shufflenet {text}: expected {allowed}')
        widen, groups = float(match.group(1)), int(match.group(2))
        if widen not in WIDEN_FACTORS or groups not in GROUPS:
            raise ConfigError(f'--shufflenet {text}: no such ShuffleNetV1 (width {widen:g}, '
                              f'groups {groups}); expected {allowed}')
        parsed.append((groups, widen))
    known = torchvision.models.list_models(module=torchvision.models)
    for peer in [p for p in peers if p not in known]:
        near = difflib.get_close_matches(peer, known, n=4)
        hint = f'did you mean {", ".join(near)}? ' if near else ''
        raise ConfigError(f'--peers {peer}: not a torchvision classification model; '
                          f'{hint}(all: torchvision.models.list_models(), e.g. '
                          'mobilenet_v2, shufflenet_v2_x1_0, resnet18)')
    sizes = [parse_size(s, '--sizes takes HEIGHTxWIDTH values such as 224x224') for s in sizes]
    return run([functools.partial(backbone_candidates, parsed, peers, h, w, batch, ablation, onnx,
                                  compile_, int8) for h, w in sizes],
               threads, warmup, repeats, out_md, out_json, progress, runs=runs)


def torchvision_detector(name: str, proposals: Optional[int] = None,
                         device: str = 'cpu') -> torch.nn.Module:
    """torchvision's ``name``, random, at 320 or 600 (as our configs), its RPN's NMS lifted and
    ``proposals`` boxes kept around it (default: torchvision's 150 at 320, 1000 at 600)."""
    counts = {} if proposals is None else dict(rpn_pre_nms_top_n_test=proposals,
                                               rpn_post_nms_top_n_test=proposals)
    min_size, max_size = (320, 640) if name == TORCHVISION_320 else (600, 1000)
    model = getattr(torchvision.models.detection, name)(
        weights=None, weights_backbone=None, min_size=min_size, max_size=max_size, **counts)
    model.rpn.nms_thresh = 1.0
    return model.eval().to(device)


def detector_candidates(configs, deploy, short_side, cfg_options, onnx, int8, device,
                        peer_proposals, workdir) -> list[Candidate]:
    """torchvision's models (at each of ``peer_proposals``), then each config at its test
    scale (or ``short_side``), compared with the peer at its own proposal count if timed."""
    counts = list(peer_proposals or [None])

    def label(peer, count):
        return peer if count is None else f'{peer} ({count} proposals)'

    rows, peers = [], {}
    for config in configs:
        cfg = load_config(config, cfg_options)
        pipeline = cfg.test_dataloader.dataset.pipeline
        short = short_side or min(next(t for t in pipeline if t['type'] == 'Resize')['scale'])
        h, w, desc = short, short * 4 // 3, f'{short}x{short * 4 // 3}'
        name = config.rsplit('/', 1)[-1].removesuffix('.py')
        model = build_randomly_initialised(cfg.model).eval()
        macs = detector_complexity(model, h, w)['flops']  # which lifts the RPN's NMS
        peer = TORCHVISION_320 if short <= 320 else 'fasterrcnn_mobilenet_v3_large_fpn'
        peers.setdefault(peer, (h, w))
        own = model.rpn_head.test_cfg.max_per_img if hasattr(model, 'rpn_head') else None
        reference = label(peer, own if own in counts else counts[0])
        models = {'plain': model if device == 'cpu' else copy.deepcopy(model).to(device)}
        if deploy:
            models['deploy'] = deploy_detector(copy.deepcopy(model)).to(device)
        for variant, eager in models.items():
            data = detector_inputs(eager, h, w)
            rows.append(Candidate(name, variant, desc, lambda m=eager, d=data: m.predict(
                d['inputs'], d['data_samples'], rescale=False), macs, (reference, 'torchvision')))
        if onnx:
            path = f'{workdir}/{name}_{desc}.onnx'
            export_detector_onnx(model, path, example_hw=(h, w))
            image = np.random.default_rng(0).uniform(0, 255, (1, 3, h, w)).astype(np.float32)
            # The int8 graph keeps the predictors in fp32, as tools/export_onnx.py --int8 does.
            rows += onnx_candidates(name, path, {'image': image}, desc, macs,
                                    (reference, 'onnxruntime'), int8, fp32_nodes_of(path))
    peer_rows = []
    for (peer, (h, w)), count in [(p, c) for p in peers.items() for c in counts]:
        image, name = torch.rand(3, h, w), label(peer, count)
        model = torchvision_detector(peer, count, device)
        peer_rows.append(Candidate(name, 'torchvision', f'{h}x{w}',
                                   lambda m=model, x=image.to(device): m([x])))
        if onnx:
            path = f'{workdir}/{peer}_{count}_{h}x{w}.onnx'
            torch_onnx_export_legacy(model, ([image], ), path, input_names=['image'],
                                     opset_version=17, dynamic_axes={'image': {1: 'h', 2: 'w'}})
            peer_rows += onnx_candidates(name, path, {'image': image.numpy()}, f'{h}x{w}', None,
                                         None)
    return peer_rows + rows


def benchmark_detectors(configs: list[str], deploy: bool = False, short_side: Optional[int] = None,
                        cfg_options: Optional[dict] = None, threads: Sequence[int] = (1, 2),
                        warmup: int = 3, repeats: int = 20, out_md: Optional[str] = None,
                        out_json: Optional[str] = None, onnx: bool = False, int8: bool = False,
                        device: str = 'cpu', peer_proposals: Optional[Sequence[int]] = None,
                        runs: int = 1, progress: Callable[[str], None] = print) -> list[dict]:
    """``tools/benchmark.py detector``: configs next to torchvision's detectors, reported;
    ConfigError before anything is built for a value that cannot work."""
    check_options(out_md, out_json, device, configs, cfg_options, threads=threads,
                  repeats=repeats, short_side=short_side, peer_proposals=peer_proposals,
                  warmup=warmup, runs=runs)
    if onnx and device != 'cpu':
        raise ConfigError('--onnx times ONNX Runtime on the CPU; leave out --device '
                          f'{device} for those rows')
    return run([functools.partial(detector_candidates, configs, deploy, short_side, cfg_options,
                                  onnx, int8, device, peer_proposals)],
               threads, warmup, repeats, out_md, out_json, progress, device, runs)


SIZE = '--size takes HEIGHTxWIDTH (600x800) or one side (256)'


def training_shape(cfg) -> tuple[int, int]:
    """(height, width) a training image reaches the model at: the classifier's crop, or a
    4:3 image (COCO's usual 640x480) through the train pipeline's ``Resize``."""
    pipeline = cfg.train_dataloader.dataset.get('pipeline', [])
    step = {t.get('type'): t for t in reversed(pipeline)}  # the first of each type
    if cfg.model.type == 'ShuffleNetClassifier':
        size = step.get('RandomResizedCrop', {}).get('size', 224)
        return (size, size) if isinstance(size, int) else tuple(size)
    if 'scale' not in step.get('Resize', {}):
        raise ConfigError('cannot tell the training scale: the train pipeline has no Resize '
                          'with a scale; pass --size')
    short, long = min(step['Resize']['scale']), max(step['Resize']['scale'])
    return short, min(long, round(short * 4 / 3))


def random_batch(cfg, batch: int, height: int, width: int):
    """One training batch of random data in the form the config's dataloader gives
    (detectors: four random boxes per image)."""
    if cfg.model.type == 'ShuffleNetClassifier':
        images = torch.randint(0, 256, (batch, 3, height, width), dtype=torch.uint8)
        return images, torch.randint(0, cfg.model.num_classes, (batch, ))
    head = cfg.model.get('roi_head', {}).get('bbox_head') or cfg.model.get('bbox_head') or \
        cfg.model
    return demo_mm_inputs(batch_size=batch, image_shapes=[(3, height, width)] * batch,
                          num_items=[4] * batch, num_classes=head['num_classes'])


def benchmark_optim_wrapper(model, wrapper_cfg, amp: bool):
    """The config's optim wrapper (``AmpOptimWrapper`` with ``amp``) at 0.001 times its rate,
    mmdet's warm-up start: random weights can diverge at the full rate, and NaNs change the work."""
    wrapper_cfg = copy.deepcopy(wrapper_cfg)
    wrapper_cfg.optimizer.lr *= 1e-3
    if amp:
        wrapper_cfg.type = 'AmpOptimWrapper'
        wrapper_cfg.setdefault('loss_scale', 'dynamic')
    return build_optim_wrapper(model, wrapper_cfg)


def benchmark_training(configs: Sequence[str], device: str = 'cpu', batch: Optional[int] = None,
                       size: Optional[str] = None, iters: int = 10, warmup: int = 2,
                       amp: bool = False, threads: int = 2, out_md: Optional[str] = None,
                       out_json: Optional[str] = None, progress: Callable[[str], None] = print,
                       seed: int = 0) -> list[dict]:
    """``tools/benchmark.py train``: median seconds per ``model.train_step`` through each
    config's optim wrapper, as MMEngine's Runner runs it, fp32 (and AMP with ``amp``).

    Args:
        configs (Sequence[str]): Config files, or ``mmdet::...`` for MMDetection's.
        batch (int, optional): Images per step. Default: the config's (per GPU).
        size (str, optional): ``HxW`` input. Default: :func:`training_shape`.
        seed (int): Draws the weights and the random batch, so that runs time the same work.
    """
    check_options(out_md, out_json, device, threads=threads, iters=iters, batch=batch,
                  warmup=warmup)
    if amp and not device.startswith('cuda'):
        raise ConfigError("--amp needs --device cuda: MMEngine's AmpOptimWrapper runs on GPUs "
                          'only')
    check_options(None, None, configs=configs)
    shape = size and parse_size(size, SIZE, one_side=True)
    torch.set_num_threads(threads)
    rows = []
    for config, with_amp in [(c, a) for c in configs for a in (False, True)[:1 + amp]]:
        set_random_seed(seed)
        cfg = load_config(config)
        height, width = shape or training_shape(cfg)
        images = batch or cfg.train_dataloader.batch_size
        torch.backends.cudnn.benchmark = bool(cfg.get('env_cfg', {}).get('cudnn_benchmark'))
        previous = logging.root.manager.disable
        logging.disable(logging.INFO)  # MMEngine logs a line per parameter while building
        try:
            model = build_randomly_initialised(cfg.model).to(device).train()
            wrapper = benchmark_optim_wrapper(model, cfg.optim_wrapper, with_amp)
        finally:
            logging.disable(previous)
        data = random_batch(cfg, images, height, width)
        if device.startswith('cuda'):
            torch.cuda.reset_peak_memory_stats(device)
        precision = 'amp' if with_amp else 'fp32'
        where = torch.cuda.get_device_name(device) if device.startswith('cuda') else \
            f'cpu, {torch.get_num_threads()} threads'
        progress(f'{config}: batch {images} at {height}x{width}, {precision}, {where}')
        step = Candidate(config, precision, '', lambda: model.train_step(data, wrapper))
        time_rounds([step], warmup, iters, progress, device)
        seconds = float(np.median(step.times))
        loss = float(step.result['loss'].detach())
        progress(f'  {seconds:.3f} s per step, last loss {loss:.3f}')
        rows.append(dict(config=config, precision=precision, device=where, batch=images,
                         input=f'{height}x{width}', iters=iters,
                         seconds_per_iter=round(seconds, 4),
                         images_per_s=round(images / seconds, 2),
                         peak_memory_mib=round(torch.cuda.max_memory_allocated(device) / 2**20)
                         if device.startswith('cuda') else None))
        if device.startswith('cuda'):
            torch.cuda.empty_cache()
    table = markdown(['config', 'precision', 'device', 'batch', 'input', 's/iter (median)',
                      'images/s', 'peak memory (MiB)'],
                     [[r[k] for k in ('config', 'precision', 'device', 'batch', 'input',
                                      'seconds_per_iter', 'images_per_s', 'peak_memory_mib')]
                      for r in rows])
    write_report(rows, table, out_md, out_json, progress)
    return rows


def write_jpeg_folder(root: str, num_images: int, num_classes: int = 10) -> str:
    """``num_images`` 500x375 JPEGs (quality 90) of the shapes generator's drawings in
    ``num_classes`` class folders: ImageNet's layout for a loader benchmark."""
    for i in range(num_images):
        folder = os.path.join(root, f'n{i % num_classes:08d}')
        os.makedirs(folder, exist_ok=True)
        img, _ = draw_image(np.random.default_rng(i), 500)
        cv2.imwrite(os.path.join(folder, f'{i:06d}.JPEG'), img[:375],
                    [cv2.IMWRITE_JPEG_QUALITY, 90])
    return root


def loader_throughput(config: str, data_root: Optional[str] = None, workers: Sequence[int] = (0,),
                      images: int = 200, synthetic: int = 0, out_md: Optional[str] = None,
                      out_json: Optional[str] = None,
                      progress: Callable[[str], None] = print) -> list[dict]:
    """``tools/benchmark.py loader``: the ImageNet training pipeline's images/s per process.

    Args:
        data_root (str, optional): ImageNet root (with ``train/``); or ``synthetic``.
        workers (Sequence[int]): Loader processes to time; 0 is this process alone.
        synthetic (int): Read this many generated 500x375 JPEGs instead of ``data_root``.
    """
    check_options(out_md, out_json, images=images, workers=workers, synthetic=synthetic)
    cfg = load_config(config)
    if cfg.model.type != 'ShuffleNetClassifier':
        raise ConfigError(f'{config} is not an ImageNet pretraining config (model type '
                          f'{cfg.model.type}, expected ShuffleNetClassifier)')
    if bool(data_root) == bool(synthetic):
        raise ConfigError('give either --data-root (ImageNet with train/) or --synthetic N')
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if synthetic:
            progress(f'writing {synthetic} synthetic 500x375 JPEGs')
            write_jpeg_folder(os.path.join(tmp, 'train'), synthetic)
        dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=data_root or tmp))
        torch.set_num_threads(1)  # one core per process, as in a DataLoader worker
        indices = np.resize(np.random.default_rng(0).permutation(len(dataset)), images).tolist()
        for w in workers:
            start = time.perf_counter()
            # Batches of 16: prefetching ahead of the first is a small part of the count.
            for _ in torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, indices),
                                                 batch_size=16, num_workers=w):
                pass
            rate = images / (time.perf_counter() - start)
            progress(f'{w} worker(s): {rate:.1f} images/s')
            rows.append(dict(config=config, data='synthetic JPEGs' if synthetic else data_root,
                             workers=w, images=images, images_per_s=round(rate, 1),
                             images_per_s_per_process=round(rate / max(w, 1), 1)))
    write_report(rows, markdown(['data', 'workers (0: main process)', 'images', 'images/s',
                                 'images/s per process'],
                                [[r[k] for k in ('data', 'workers', 'images', 'images_per_s',
                                                 'images_per_s_per_process')] for r in rows]),
                 out_md, out_json, progress)
    return rows
