"""Training speed: images/s and peak memory of a config's training step, and the ImageNet
loader's decode-and-augment rate.

A training step is what MMEngine's Runner runs: ``model.train_step`` through the
config's own optim wrapper, in fp32 or with ``AmpOptimWrapper`` as ``tools/train.py
--amp`` sets it. Inputs are random, at the config's training scale and batch size:
detectors get 4:3 images with four random boxes each (``mmdet.testing.demo_mm_inputs``),
the ImageNet classifier its crop size. Weights are the constructors' random ones (no
checkpoint is read). Data loading is left out on purpose and measured on its own by
:func:`loader_throughput`: a GPU needs as many loader processes as its training
images/s divided by one process's rate.
"""
import contextlib
import copy
import logging
import os
import random
import statistics
import tempfile
import time
from typing import Callable, Optional, Sequence

import cv2
import numpy as np
import torch
from mmdet.registry import MODELS
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper

from ..config import load_config
from ..datasets.synthetic_shapes import draw_image
from ..errors import ConfigError
from .benchmark import check_device, device_name, synchronize
from .report import write_report
from .benchmark_inputs import check_at_least, check_configs, check_report_paths


def _train_transform(cfg, name: str) -> Optional[dict]:
    pipeline = cfg.train_dataloader.dataset.get('pipeline', [])
    return next((t for t in pipeline if t.get('type') == name), None)


def is_classifier(cfg) -> bool:
    return cfg.model.type == 'ShuffleNetClassifier'


def training_shape(cfg) -> tuple[int, int]:
    """(height, width) a training image reaches the model at.

    Detectors: a 4:3 image (COCO's usual 640x480) through the train pipeline's
    ``Resize``, e.g. 600x800 for ``scale=(1000, 600)``. The classifier: its crop.
    """
    if is_classifier(cfg):
        crop = _train_transform(cfg, 'RandomResizedCrop')
        size = crop['size'] if crop else 224
        return (size, size) if isinstance(size, int) else tuple(size)
    resize = _train_transform(cfg, 'Resize')
    if resize is None or 'scale' not in resize:
        raise ConfigError('cannot tell the training scale: the train pipeline has no Resize '
                          'with a scale; pass --size')
    short, long = min(resize['scale']), max(resize['scale'])
    return short, min(long, round(short * 4 / 3))


def parse_size(text: str) -> tuple[int, int]:
    """``'600x800'`` -> (600, 800); ``'256'`` -> (256, 256)."""
    parts = text.lower().split('x')
    if len(parts) in (1, 2) and all(p.isdigit() and int(p) > 0 for p in parts):
        return int(parts[0]), int(parts[-1])
    raise ConfigError(f'--size takes HEIGHTxWIDTH (600x800) or one side (256), got {text!r}')


def _num_classes(model_cfg) -> int:
    for head in ('roi_head', 'bbox_head'):
        if head in model_cfg:
            part = model_cfg[head]
            return part['bbox_head']['num_classes'] if head == 'roi_head' else part['num_classes']
    return model_cfg['num_classes']


def random_batch(cfg, batch: int, height: int, width: int):
    """One training batch of random data in the form the config's dataloader gives."""
    if is_classifier(cfg):
        images = torch.randint(0, 256, (batch, 3, height, width), dtype=torch.uint8)
        return images, torch.randint(0, cfg.model.num_classes, (batch, ))
    from mmdet.testing import demo_mm_inputs
    return demo_mm_inputs(batch_size=batch, image_shapes=[(3, height, width)] * batch,
                          num_items=[4] * batch, num_classes=_num_classes(cfg.model))


def _check_device(device: str, amp: bool) -> None:
    check_device(device)
    if amp and not device.startswith('cuda'):
        raise ConfigError("--amp needs --device cuda: MMEngine's AmpOptimWrapper runs on GPUs "
                          'only')


def without_checkpoints(cfg):
    """``cfg`` with every ``init_cfg`` that reads a checkpoint removed."""
    if isinstance(cfg, dict):
        init = cfg.get('init_cfg')
        reads_file = isinstance(init, dict) and 'checkpoint' in init
        return type(cfg)({k: without_checkpoints(v) for k, v in cfg.items()
                          if not (k == 'init_cfg' and reads_file)})
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(without_checkpoints(v) for v in cfg)
    return cfg


def build_randomly_initialised(model_cfg):
    """The model with the initialisation its modules do without a checkpoint (a
    pretrained ``init_cfg`` would download or read one; a benchmark needs neither)."""
    model = MODELS.build(without_checkpoints(model_cfg))
    model.init_weights()
    return model


def benchmark_optim_wrapper(model, wrapper_cfg, amp: bool):
    """The config's optim wrapper, or ``AmpOptimWrapper`` as ``tools/train.py --amp`` sets it.

    The learning rate is the config's times 0.001, where mmdet's warm-up starts
    (``LinearLR``, ``start_factor=0.001``): random weights at the full rate can diverge
    within the timed steps (seen with the ImageNet config's 0.5 at a small batch), and
    NaN losses change the work. A step's arithmetic does not depend on the rate.
    """
    wrapper_cfg = copy.deepcopy(wrapper_cfg)
    wrapper_cfg.optimizer.lr *= 1e-3
    if amp:
        wrapper_cfg.type = 'AmpOptimWrapper'
        wrapper_cfg.setdefault('loss_scale', 'dynamic')
    return build_optim_wrapper(model, wrapper_cfg)


@contextlib.contextmanager
def _warnings_only():
    """MMEngine logs a line per parameter when it initialises weights and applies decay
    rules; a benchmark's output keeps its warnings only."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def time_training_steps(model, optim_wrapper, data, device: str, iters: int, warmup: int,
                        progress: Callable[[str], None]) -> list[float]:
    """Seconds of each of ``iters`` training steps after ``warmup`` untimed ones."""
    times = []
    for i in range(warmup + iters):
        synchronize(device)
        start = time.perf_counter()
        losses = model.train_step(data, optim_wrapper)
        synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
            if progress and (len(times) == iters or len(times) % max(1, iters // 4) == 0):
                progress(f'  iteration {len(times)}/{iters}: {times[-1]:.3f} s, '
                         f'loss {float(losses["loss"].detach()):.3f}')
    return times


def training_row(config: str, device: str = 'cpu', batch: Optional[int] = None,
                 size: Optional[str] = None, iters: int = 10, warmup: int = 2,
                 amp: bool = False, progress: Callable[[str], None] = print,
                 seed: int = 0) -> dict:
    """Median seconds per training step of ``config`` and what follows from it.

    Args:
        config (str): A config file, or ``mmdet::...`` for one of MMDetection's.
        device (str): ``'cpu'`` or ``'cuda[:N]'``.
        batch (int, optional): Images per step. Default: the config's
            ``train_dataloader.batch_size`` (per GPU).
        size (str, optional): ``HxW`` input. Default: :func:`training_shape`.
        iters (int): Timed steps. warmup (int): Untimed steps before them.
        amp (bool): ``AmpOptimWrapper`` with a dynamic loss scale, as ``--amp``.
        seed (int): Draws the weights and the batch, so that two runs time the same work
            (with random weights, the proposals and so the RoI head's work depend on it).
    """
    _check_device(device, amp)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    cfg = load_config(config)
    batch = batch or cfg.train_dataloader.batch_size
    height, width = parse_size(size) if size else training_shape(cfg)
    torch.backends.cudnn.benchmark = bool(cfg.get('env_cfg', {}).get('cudnn_benchmark'))
    with _warnings_only():
        model = build_randomly_initialised(cfg.model).to(device)
        model.train()
        optim_wrapper = benchmark_optim_wrapper(model, cfg.optim_wrapper, amp)
    data = random_batch(cfg, batch, height, width)
    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats(device)
    where = device_name(device)
    progress(f'{config}: batch {batch} at {height}x{width}, {"AMP" if amp else "fp32"}, {where}')
    seconds = statistics.median(
        time_training_steps(model, optim_wrapper, data, device, iters, warmup, progress))
    peak = (round(torch.cuda.max_memory_allocated(device) / 2**20) if device.startswith('cuda')
            else None)
    return dict(config=config, precision='amp' if amp else 'fp32', device=where,
                batch=batch, input=f'{height}x{width}', iters=iters,
                seconds_per_iter=round(seconds, 4), images_per_s=round(batch / seconds, 2),
                peak_memory_mib=peak)


def training_table(rows: Sequence[dict]) -> str:
    lines = ['| config | precision | device | batch | input | s/iter (median) | images/s | '
             'peak memory (MiB) |', '|---|---|---|---|---|---|---|---|']
    for r in rows:
        peak = '' if r['peak_memory_mib'] is None else r['peak_memory_mib']
        lines.append(f'| {r["config"]} | {r["precision"]} | {r["device"]} | {r["batch"]} | '
                     f'{r["input"]} | {r["seconds_per_iter"]} | {r["images_per_s"]} | {peak} |')
    return '\n'.join(lines)


def benchmark_training(configs: Sequence[str], device: str = 'cpu', batch: Optional[int] = None,
                       size: Optional[str] = None, iters: int = 10, warmup: int = 2,
                       amp: bool = False, threads: int = 2, out_md: Optional[str] = None,
                       out_json: Optional[str] = None,
                       progress: Callable[[str], None] = print) -> list[dict]:
    """``tools/benchmark.py train``: a row per config (and an AMP row each with ``amp``).

    Raises:
        ConfigError: before any model is built, for a value that cannot work.
    """
    check_report_paths(out_md, out_json)
    check_at_least(1, threads=threads, iters=iters, batch=batch)
    check_at_least(0, warmup=warmup)
    _check_device(device, amp)
    if size:
        parse_size(size)
    check_configs(configs)
    torch.set_num_threads(threads)
    rows = []
    for config in configs:
        for with_amp in ((False, True) if amp else (False, )):
            rows.append(training_row(config, device, batch, size, iters, warmup, with_amp,
                                     progress))
            if device.startswith('cuda'):
                torch.cuda.empty_cache()
    write_report(rows, training_table(rows), out_md, out_json, progress)
    return rows


# --------------------------------------------------------------------------- loader


def write_jpeg_folder(root: str, num_images: int, num_classes: int = 10,
                      shape: tuple[int, int] = (375, 500)) -> str:
    """``num_images`` JPEGs (quality 90) of the shapes generator's drawings in
    ``num_classes`` class folders: ImageNet's layout for a loader benchmark."""
    for i in range(num_images):
        folder = os.path.join(root, f'n{i % num_classes:08d}')
        os.makedirs(folder, exist_ok=True)
        img, _ = draw_image(np.random.default_rng(i), max(shape))
        cv2.imwrite(os.path.join(folder, f'{i:06d}.JPEG'), img[:shape[0], :shape[1]],
                    [cv2.IMWRITE_JPEG_QUALITY, 90])
    return root


def _loader_rate(dataset, workers: int, images: int, batch: int = 16) -> float:
    """Images/s of ``dataset``'s decode and augmentation with ``workers`` processes
    (0: this process), start-up included; batches of 16, so that prefetching ahead of
    the first batch is a small part of the images counted."""
    indices = np.resize(np.random.default_rng(0).permutation(len(dataset)), images).tolist()
    start = time.perf_counter()
    if workers == 0:
        for i in indices:
            dataset[i]
    else:
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, indices),
                                             batch_size=batch, num_workers=workers)
        images = sum(len(labels) for _, labels in loader)
    return images / (time.perf_counter() - start)


def loader_throughput(config: str, data_root: Optional[str] = None, workers: Sequence[int] = (0,),
                      images: int = 200, synthetic: int = 0, out_md: Optional[str] = None,
                      out_json: Optional[str] = None,
                      progress: Callable[[str], None] = print) -> list[dict]:
    """``tools/benchmark.py loader``: the ImageNet training pipeline's images/s per process.

    Args:
        config (str): A pretraining config (its ``train_dataloader.dataset``).
        data_root (str, optional): ImageNet root (with ``train/``); or ``synthetic``.
        workers (Sequence[int]): Loader processes to time; 0 is this process alone,
            the rate of one CPU core.
        images (int): Images decoded per measurement.
        synthetic (int): Write this many 500x375 JPEGs to a temporary folder and read
            those instead of ``data_root``.
    """
    from mmdet.registry import DATASETS
    check_report_paths(out_md, out_json)
    check_at_least(1, images=images)
    check_at_least(0, workers=workers, synthetic=synthetic)
    cfg = load_config(config)
    if not is_classifier(cfg):
        raise ConfigError(f'{config} is not an ImageNet pretraining config (model type '
                          f'{cfg.model.type}, expected ShuffleNetClassifier)')
    if bool(data_root) == bool(synthetic):
        raise ConfigError('give either --data-root (ImageNet with train/) or --synthetic N')
    with tempfile.TemporaryDirectory() as tmp:
        if synthetic:
            progress(f'writing {synthetic} synthetic 500x375 JPEGs')
            data_root = tmp
            write_jpeg_folder(os.path.join(tmp, 'train'), synthetic)
        dataset_cfg = cfg.train_dataloader.dataset.copy()
        dataset_cfg.data_root = data_root
        dataset = DATASETS.build(dataset_cfg)
        torch.set_num_threads(1)  # one core per process, as in a DataLoader worker
        rows = []
        for w in workers:
            rate = _loader_rate(dataset, w, images)
            per_process = rate / max(w, 1)
            progress(f'{w} worker(s): {rate:.1f} images/s')
            rows.append(dict(config=config, data='synthetic JPEGs' if synthetic else data_root,
                             workers=w, images=images, images_per_s=round(rate, 1),
                             images_per_s_per_process=round(per_process, 1)))
    lines = ['| data | workers (0: main process) | images | images/s | images/s per process |',
             '|---|---|---|---|---|']
    lines += [f'| {r["data"]} | {r["workers"]} | {r["images"]} | {r["images_per_s"]} | '
              f'{r["images_per_s_per_process"]} |' for r in rows]
    write_report(rows, '\n'.join(lines), out_md, out_json, progress)
    return rows
