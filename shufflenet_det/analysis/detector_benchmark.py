"""Latency of the detectors (CPU, or eager on a GPU) next to torchvision's Faster R-CNN MobileNetV3-FPN models.

Each detector runs at its test scale on a 4:3 image with random weights, eager (plain,
and with ``deploy_detector`` when asked) and, when asked, exported to ONNX and run in
ONNX Runtime (fp32, and int8 for ours). torchvision's models are timed eager and in
ONNX Runtime the same way, so that every row has a like-for-like reference: eager rows
against torchvision eager, ONNX Runtime rows against torchvision in ONNX Runtime, int8
rows against the same model's fp32 graph.

Random weights would let NMS decide the work: the RPN's NMS is lifted (IoU threshold
1.0) on both sides before anything is timed or exported, so every RoI head sees its
configured proposal count (300 or 150 here; 150 and 1000 for torchvision's 320 and
full-size models). Final scores stay below both sides' 0.05 threshold, so the final NMS
is equally light on both.
"""
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from ..config import load_config
from ..deploy import (deploy_detector, export_detector_onnx, int8_path, onnxruntime_session,
                      quantize_int8)
from ..deploy.detector_export import fp32_nodes_of
from ..deploy.legacy_onnx_exporter import torch_onnx_export_legacy
from ..errors import ConfigError
from .benchmark import Candidate, check_device, markdown_table, run, synchronized
from .report import write_report
from .benchmark_inputs import check_at_least, check_configs, check_report_paths
from .complexity import detector_complexity
from .training_benchmark import build_randomly_initialised

TORCHVISION_320 = 'fasterrcnn_mobilenet_v3_large_320_fpn'
TORCHVISION_FULL = 'fasterrcnn_mobilenet_v3_large_fpn'


def lift_rpn_nms(model: nn.Module) -> None:
    """Let the RPN keep its full proposal budget with random weights (IoU threshold 1)."""
    rpn = getattr(model, 'rpn_head', None)
    if rpn is not None and rpn.test_cfg is not None:
        rpn.test_cfg.nms.iou_threshold = 1.0
    tv_rpn = getattr(model, 'rpn', None)
    if tv_rpn is not None and hasattr(tv_rpn, 'nms_thresh'):
        tv_rpn.nms_thresh = 1.0


def mmdet_detector(config: str, deploy: bool, cfg_options: Optional[dict] = None,
                   device: str = 'cpu') -> nn.Module:
    # Random weights: timing needs no ImageNet checkpoint (the configs' is refused if missing).
    model = build_randomly_initialised(load_config(config, cfg_options).model)
    model.eval()
    if deploy:
        deploy_detector(model)
    lift_rpn_nms(model)
    return model.to(device)


def mmdet_predict_fn(model: nn.Module, height: int, width: int) -> Callable[[], object]:
    from mmdet.structures import DetDataSample
    sample = DetDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width),
                                         scale_factor=(1.0, 1.0)))
    image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8)
    data = model.data_preprocessor(dict(inputs=[image], data_samples=[sample]), False)
    return lambda: model.predict(data['inputs'], data['data_samples'], rescale=False)


def torchvision_detector(name: str, min_size: int, max_size: int,
                         device: str = 'cpu') -> nn.Module:
    import torchvision
    model = getattr(torchvision.models.detection, name)(
        weights=None, weights_backbone=None, min_size=min_size, max_size=max_size).eval()
    lift_rpn_nms(model)
    return model.to(device)


def _test_short_side(config: str) -> int:
    """Shorter side the config's test pipeline resizes to (its Resize scale's smaller value)."""
    pipeline = load_config(config).test_dataloader.dataset.pipeline
    resize = next(t for t in pipeline if t['type'] == 'Resize')
    return min(resize['scale'])


def _session_row(name: str, variant: str, path: str, feed: dict, macs, reference) -> Candidate:
    session = onnxruntime_session(path, torch.get_num_threads(), spinning=False)
    return Candidate(name, variant, desc_of(feed), lambda: session.run(None, feed), macs,
                     reference)


def desc_of(feed: dict) -> str:
    h, w = next(iter(feed.values())).shape[-2:]
    return f'{h}x{w}'


def onnx_detector_rows(name: str, model: nn.Module, h: int, w: int, macs: int, peer: str,
                       workdir: str, int8: bool) -> list[Candidate]:
    """Our detector exported (NMS already lifted) and run in ONNX Runtime, fp32 and int8.

    The int8 graph keeps the predictors in fp32 as ``tools/export_onnx.py --int8`` does;
    it is calibrated on eight random images (the weights are random; speed only).
    """
    path = f'{workdir}/{name}_{h}x{w}.onnx'
    export_detector_onnx(model, path, example_hw=(h, w))
    image = np.random.default_rng(0).uniform(0, 255, (1, 3, h, w)).astype(np.float32)
    feed = {'image': image}
    rows = [_session_row(name, 'onnxruntime', path, feed, macs, (peer, 'onnxruntime'))]
    if int8:
        calibration = [np.random.default_rng(i).uniform(0, 255, image.shape).astype(np.float32)
                       for i in range(1, 9)]
        quantize_int8(path, int8_path(path), calibration, len(calibration),
                      nodes_to_exclude=fp32_nodes_of(path), progress=None)
        rows.append(_session_row(name, 'onnxruntime int8', int8_path(path), feed, macs,
                                 (name, 'onnxruntime')))
    return rows


def torchvision_rows(peer: str, h: int, w: int, onnx: bool, workdir: str,
                     device: str = 'cpu') -> list[Candidate]:
    """torchvision's detector of that scale, eager and (with ``onnx``) in ONNX Runtime."""
    min_size, max_size = (320, 640) if peer == TORCHVISION_320 else (600, 1000)
    model = torchvision_detector(peer, min_size, max_size, device)
    image = torch.rand(3, h, w)
    on_device = image.to(device)
    rows = [Candidate(peer, 'torchvision', f'{h}x{w}',
                      synchronized(lambda: model([on_device]), device), None, None)]
    if onnx:
        path = f'{workdir}/{peer}_{h}x{w}.onnx'
        torch_onnx_export_legacy(model, ([image], ), path, input_names=['image'], opset_version=17,
                                dynamic_axes={'image': {1: 'height', 2: 'width'}})
        rows.append(_session_row(peer, 'onnxruntime', path, {'image': image.numpy()}, None,
                                 None))
    return rows


def detector_candidates(configs, deploy, short_side=None, cfg_options=None, onnx=False,
                        int8=False, workdir: Optional[str] = None,
                        device: str = 'cpu') -> list[Candidate]:
    """Each config at its test scale (or ``short_side``) on a 4:3 image, eager (plain and
    with the fast path) and in ONNX Runtime, after torchvision's model of that scale.
    Eager rows run on ``device``; ONNX Runtime rows on the CPU."""
    rows, peers = [], {}
    for config in configs:
        short = short_side or _test_short_side(config)
        h, w = (short, short * 4 // 3)
        name = config.rsplit('/', 1)[-1].removesuffix('.py')
        model = mmdet_detector(config, False, cfg_options)
        macs = detector_complexity(model, h, w)['flops']
        eager = mmdet_detector(config, False, cfg_options, device) if device != 'cpu' else model
        peer = TORCHVISION_320 if short <= 320 else TORCHVISION_FULL
        peers.setdefault(peer, (h, w))
        rows.append(Candidate(name, 'plain', f'{h}x{w}',
                              synchronized(mmdet_predict_fn(eager, h, w), device), macs,
                              (peer, 'torchvision')))
        if deploy:
            fast = mmdet_detector(config, True, cfg_options, device)
            rows.append(Candidate(name, 'deploy', f'{h}x{w}',
                                  synchronized(mmdet_predict_fn(fast, h, w), device), macs,
                                  (peer, 'torchvision')))
        if onnx:
            rows += onnx_detector_rows(name, model, h, w, macs, peer, workdir, int8)
    peer_rows = [row for peer, (h, w) in peers.items()
                 for row in torchvision_rows(peer, h, w, onnx, workdir, device)]
    return peer_rows + rows


def benchmark_detectors(configs: list[str], deploy: bool = False, short_side: Optional[int] = None,
                        cfg_options: Optional[dict] = None, threads: tuple[int, ...] = (1, 2),
                        warmup: int = 3, repeats: int = 20, out_md: Optional[str] = None,
                        out_json: Optional[str] = None, onnx: bool = False, int8: bool = False,
                        device: str = 'cpu',
                        progress: Callable[[str], None] = print) -> list[dict]:
    """``tools/benchmark.py detector``: configs next to torchvision's detectors, reported.

    Raises:
        ConfigError: before anything is built, for a value that cannot work.
    """
    import tempfile
    check_report_paths(out_md, out_json)
    check_at_least(1, threads=threads, repeats=repeats, short_side=short_side)
    check_at_least(0, warmup=warmup)
    check_device(device)
    check_configs(configs, cfg_options)
    if onnx and device != 'cpu':
        raise ConfigError('--onnx times ONNX Runtime on the CPU; leave out --device '
                          f'{device} for those rows')
    with tempfile.TemporaryDirectory() as workdir:
        rows = run(lambda: detector_candidates(configs, deploy, short_side, cfg_options, onnx,
                                               int8, workdir, device), threads, warmup, repeats,
                   progress, device)
    write_report(rows, markdown_table(rows), out_md, out_json, progress)
    return rows
