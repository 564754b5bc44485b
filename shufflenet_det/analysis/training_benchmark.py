"""Training speed: images/s and peak memory of a config's training step, and the ImageNet
loader's decode-and-augment rate (a GPU needs as many loader processes as its training
images/s divided by one process's rate).
"""
import copy
import logging
import os
import tempfile
import time
from typing import Callable, Optional, Sequence

import cv2
import numpy as np
import torch
from mmdet.registry import DATASETS
from mmdet.testing import demo_mm_inputs
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.runner import set_random_seed

from ..config import load_config
from ..datasets.synthetic_shapes import draw_image
from ..errors import ConfigError
from .benchmark import (Candidate, build_randomly_initialised, check_options, device_name,
                        markdown, parse_size, time_rounds, write_report)

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
    """The config's optim wrapper (``AmpOptimWrapper`` with ``amp``) at 0.001 times its
    learning rate, where mmdet's warm-up starts: random weights at the full rate can
    diverge within the timed steps, and NaN losses change the work."""
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

    Raises:
        ConfigError: before any model is built, for a value that cannot work.
    """
    check_options(out_md, out_json, device, threads=threads, iters=iters, batch=batch,
                  warmup=warmup)
    if amp and not device.startswith('cuda'):
        raise ConfigError("--amp needs --device cuda: MMEngine's AmpOptimWrapper runs on GPUs "
                          'only')
    check_options(None, None, configs=configs)
    shape = size and parse_size(size, SIZE, one_side=True)
    torch.set_num_threads(threads)
    logger, rows = MMLogger.get_current_instance(), []
    for config, with_amp in [(c, a) for c in configs for a in (False, True)[:1 + amp]]:
        set_random_seed(seed)
        cfg = load_config(config)
        height, width = shape or training_shape(cfg)
        images = batch or cfg.train_dataloader.batch_size
        torch.backends.cudnn.benchmark = bool(cfg.get('env_cfg', {}).get('cudnn_benchmark'))
        level = logger.level
        logger.setLevel(logging.WARNING)  # MMEngine logs a line per parameter while building
        try:
            model = build_randomly_initialised(cfg.model).to(device).train()
            wrapper = benchmark_optim_wrapper(model, cfg.optim_wrapper, with_amp)
        finally:
            logger.setLevel(level)
        data = random_batch(cfg, images, height, width)
        if device.startswith('cuda'):
            torch.cuda.reset_peak_memory_stats(device)
        precision, where = 'amp' if with_amp else 'fp32', device_name(device)
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
