"""Latency of the detectors next to torchvision's Faster R-CNN MobileNetV3-FPN models.

Each detector runs with random weights at its test scale on a 4:3 image: eager (plain, and
with ``deploy_detector`` when asked, on the CPU or a GPU) and exported to ONNX Runtime (fp32
and int8) when asked; torchvision's model of that scale is timed eager and in ONNX Runtime
alike, so every row has a like-for-like reference. Random weights would let NMS decide the
work, so the RPN's NMS is lifted (IoU threshold 1.0) on both sides before anything is timed
or exported: each RoI head sees its configured proposal count (``--peer-proposals`` sets
torchvision's). Final scores stay below both sides' 0.05 threshold.
"""
import tempfile
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torchvision
from torch import nn

from ..config import load_config
from ..deploy import deploy_detector, export_detector_onnx
from ..deploy import fp32_nodes_of, torch_onnx_export_legacy
from ..errors import ConfigError
from .benchmark import (Candidate, check_options, markdown_table, onnx_candidates,
                        run, write_report)
from .complexity import detector_complexity, detector_inputs
from .training_benchmark import build_randomly_initialised

TORCHVISION_320 = 'fasterrcnn_mobilenet_v3_large_320_fpn'
TORCHVISION_FULL = 'fasterrcnn_mobilenet_v3_large_fpn'


def mmdet_detector(config: str, deploy: bool, cfg_options: Optional[dict] = None,
                   device: str = 'cpu') -> nn.Module:
    # Random weights: timing needs no ImageNet checkpoint (the configs' is refused if missing).
    model = build_randomly_initialised(load_config(config, cfg_options).model).eval()
    if deploy:
        deploy_detector(model)
    if hasattr(model, 'rpn_head'):
        model.rpn_head.test_cfg.nms.iou_threshold = 1.0
    return model.to(device)


def torchvision_detector(name: str, proposals: Optional[int] = None,
                         device: str = 'cpu') -> nn.Module:
    """torchvision's model ``name`` with random weights at its scale (320, or 600 as our
    full-size configs) and lifted RPN NMS, keeping ``proposals`` boxes before and after it
    (default: torchvision's own counts, 150 at 320 and 1000 at full size)."""
    counts = {} if proposals is None else dict(rpn_pre_nms_top_n_test=proposals,
                                               rpn_post_nms_top_n_test=proposals)
    min_size, max_size = (320, 640) if name == TORCHVISION_320 else (600, 1000)
    model = getattr(torchvision.models.detection, name)(
        weights=None, weights_backbone=None, min_size=min_size, max_size=max_size, **counts)
    model.rpn.nms_thresh = 1.0
    return model.eval().to(device)


def peer_label(peer: str, proposals: Optional[int]) -> str:
    return peer if proposals is None else f'{peer} ({proposals} proposals)'


def torchvision_candidates(peer: str, h: int, w: int, proposals: Sequence[Optional[int]],
                           onnx: bool, workdir: str, device: str = 'cpu') -> list[Candidate]:
    """torchvision's detector at each proposal count, eager and (with ``onnx``) in ONNX Runtime."""
    rows = []
    image = torch.rand(3, h, w)
    on_device = image.to(device)
    for count in proposals:
        model, name = torchvision_detector(peer, count, device), peer_label(peer, count)
        rows.append(Candidate(name, 'torchvision', f'{h}x{w}', lambda m=model: m([on_device])))
        if onnx:
            path = f'{workdir}/{peer}_{count}_{h}x{w}.onnx'
            torch_onnx_export_legacy(model, ([image], ), path, input_names=['image'],
                                     opset_version=17,
                                     dynamic_axes={'image': {1: 'height', 2: 'width'}})
            rows += onnx_candidates(name, path, {'image': image.numpy()}, f'{h}x{w}', None, None)
    return rows


def detector_candidates(configs, deploy, short_side=None, cfg_options=None, onnx=False,
                        int8=False, workdir: Optional[str] = None, device: str = 'cpu',
                        peer_proposals: Optional[Sequence[int]] = None) -> list[Candidate]:
    """torchvision's models first, then each config at its test scale (or ``short_side``),
    eager on ``device`` and in ONNX Runtime on the CPU. A config is compared with the peer
    at its own proposal count where ``peer_proposals`` has it, else at the first count."""
    counts = list(peer_proposals or [None])
    rows, peers = [], {}
    for config in configs:
        pipeline = load_config(config, cfg_options).test_dataloader.dataset.pipeline
        short = short_side or min(next(t for t in pipeline if t['type'] == 'Resize')['scale'])
        h, w, desc = short, short * 4 // 3, f'{short}x{short * 4 // 3}'
        name = config.rsplit('/', 1)[-1].removesuffix('.py')
        model = mmdet_detector(config, False, cfg_options)
        macs = detector_complexity(model, h, w)['flops']
        peer = TORCHVISION_320 if short <= 320 else TORCHVISION_FULL
        peers.setdefault(peer, (h, w))
        own = model.rpn_head.test_cfg.max_per_img if hasattr(model, 'rpn_head') else None
        reference = peer_label(peer, own if own in counts else counts[0])
        variants = [('plain', mmdet_detector(config, False, cfg_options, device)
                     if device != 'cpu' else model)]
        if deploy:
            variants.append(('deploy', mmdet_detector(config, True, cfg_options, device)))
        for variant, eager in variants:
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
    return [row for peer, (h, w) in peers.items()
            for row in torchvision_candidates(peer, h, w, counts, onnx, workdir, device)] + rows


def benchmark_detectors(configs: list[str], deploy: bool = False, short_side: Optional[int] = None,
                        cfg_options: Optional[dict] = None, threads: Sequence[int] = (1, 2),
                        warmup: int = 3, repeats: int = 20, out_md: Optional[str] = None,
                        out_json: Optional[str] = None, onnx: bool = False, int8: bool = False,
                        device: str = 'cpu', peer_proposals: Optional[Sequence[int]] = None,
                        progress: Callable[[str], None] = print) -> list[dict]:
    """``tools/benchmark.py detector``: configs next to torchvision's detectors, reported.

    Raises:
        ConfigError: before anything is built, for a value that cannot work.
    """
    check_options(out_md, out_json, device, configs, cfg_options, threads=threads,
                  repeats=repeats, short_side=short_side, peer_proposals=peer_proposals,
                  warmup=warmup)
    if onnx and device != 'cpu':
        raise ConfigError('--onnx times ONNX Runtime on the CPU; leave out --device '
                          f'{device} for those rows')
    with tempfile.TemporaryDirectory() as workdir:
        rows = run(lambda: detector_candidates(configs, deploy, short_side, cfg_options, onnx,
                                               int8, workdir, device, peer_proposals),
                   threads, warmup, repeats, progress, device)
    write_report(rows, markdown_table(rows), out_md, out_json, progress)
    return rows
