"""A small, deterministic COCO-format dataset of drawn shapes on cluttered backgrounds.

Each image holds 2 to 6 objects of :data:`CLASSES` with random size, rotation and colour
(colour says nothing about the class). A later object may hide part of an earlier one,
whose box then covers what stays visible; no object is more than :data:`MAX_HIDDEN`
hidden. Image ``i`` of a split is drawn from a generator seeded with ``(seed, split, i)``.
"""
import json
import math
import os
import os.path as osp
import shutil
from typing import Callable, Optional

import cv2
import numpy as np

from ..fileio import atomic_open

CLASSES = ('circle', 'square', 'triangle', 'star', 'cross')
MAX_HIDDEN = 0.4
_SPLIT_SEEDS = {'train': 1, 'val': 2}


def _shape_mask(kind: str, size: int, cx: float, cy: float, r: float,
                angle: float) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    if kind == 'circle':
        cv2.circle(mask, (int(cx), int(cy)), int(r), 1, -1, lineType=cv2.LINE_8)
        return mask.astype(bool)
    if kind == 'square':
        pts = [(x * r / math.sqrt(2), y * r / math.sqrt(2))
               for x, y in [(1, 1), (-1, 1), (-1, -1), (1, -1)]]
    elif kind == 'triangle':
        pts = [(r * math.cos(a), r * math.sin(a))
               for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    elif kind == 'star':
        pts = [((r if i % 2 == 0 else 0.45 * r) * math.cos(-math.pi / 2 + i * math.pi / 5),
                (r if i % 2 == 0 else 0.45 * r) * math.sin(-math.pi / 2 + i * math.pi / 5))
               for i in range(10)]
    else:  # cross
        a, b = r, 0.33 * r
        pts = [(b, a), (-b, a), (-b, b), (-a, b), (-a, -b), (-b, -b), (-b, -a), (b, -a),
               (b, -b), (a, -b), (a, b), (b, b)]
    c, s = math.cos(angle), math.sin(angle)
    polygon = np.array([[cx + x * c - y * s, cy + x * s + y * c] for x, y in pts], np.int32)
    cv2.fillPoly(mask, [polygon], 1)
    return mask.astype(bool)


def _draw_segments(rng: np.random.Generator, img: np.ndarray, count: int) -> None:
    for _ in range(count):
        p0, p1 = (tuple(int(v) for v in rng.integers(0, img.shape[0], 2)) for _ in range(2))
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.line(img, p0, p1, color, int(rng.integers(1, 3)), lineType=cv2.LINE_AA)


def draw_image(rng: np.random.Generator, size: int = 256,
               min_objects: int = 2, max_objects: int = 6) -> tuple[np.ndarray, list[dict]]:
    """Draw one image. Returns it (BGR, HxWx3 uint8) and its objects as dicts with
    ``category`` (index into :data:`CLASSES`), ``bbox`` (x, y, w, h) and ``area``."""
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = np.linspace(0, 1, size)[:, None, None]
    if rng.random() < 0.5:
        t = t.transpose(1, 0, 2)
    img = np.clip(c0 * (1 - t) + c1 * t + rng.normal(0, 12, (size, size, 3)), 0, 255)
    img = img.astype(np.uint8)
    _draw_segments(rng, img, int(rng.integers(4, 12)))  # clutter that is not an object
    for _ in range(rng.integers(10, 30)):  # specks
        p = tuple(int(v) for v in rng.integers(0, size, 2))
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.circle(img, p, int(rng.integers(1, 3)), color, -1)
    masks, kinds = [], []
    for _ in range(rng.integers(min_objects, max_objects + 1)):
        for _attempt in range(20):
            kind = int(rng.integers(len(CLASSES)))
            r = rng.uniform(0.05, 0.2) * size
            cx, cy = rng.uniform(r, size - r, 2)
            mask = _shape_mask(CLASSES[kind], size, cx, cy, r, rng.uniform(0, 2 * math.pi))
            visible = [m & ~mask for m in masks]
            if mask.sum() > 0 and all(v.sum() >= (1 - MAX_HIDDEN) * m.sum()
                                      for v, m in zip(visible, masks)):
                masks = visible + [mask]
                kinds.append(kind)
                img[mask] = rng.integers(0, 256, 3)
                break
    _draw_segments(rng, img, int(rng.integers(0, 3)))  # thin lines across the objects too
    objects = []
    for kind, mask in zip(kinds, masks):
        ys, xs = np.nonzero(mask)
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        objects.append(dict(category=kind, bbox=[int(x0), int(y0), int(x1 - x0), int(y1 - y0)],
                            area=int(mask.sum())))
    return img, objects


def generate_split(root: str, split: str, num_images: int, image_size: int = 256,
                   seed: int = 0, progress: Optional[Callable[[str], None]] = None) -> str:
    """Write ``root/split/*.png`` and, last (its presence means the split is complete),
    ``root/annotations/instances_split.json``, whose path is returned."""
    if split not in _SPLIT_SEEDS:
        raise ValueError(f'split must be one of {tuple(_SPLIT_SEEDS)}, got {split!r}')
    os.makedirs(osp.join(root, split), exist_ok=True)
    images, annotations = [], []
    for i in range(num_images):
        img, objects = draw_image(np.random.default_rng([seed, _SPLIT_SEEDS[split], i]),
                                  image_size)
        name = f'{i:05d}.png'
        cv2.imwrite(osp.join(root, split, name), img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        images.append(dict(id=i + 1, file_name=name, width=image_size, height=image_size))
        annotations += [dict(id=len(annotations) + k + 1, image_id=i + 1,
                             category_id=obj['category'] + 1, bbox=obj['bbox'],
                             area=obj['area'], iscrowd=0) for k, obj in enumerate(objects)]
        if progress and (i + 1) % 100 == 0:
            progress(f'{split}: {i + 1}/{num_images} images')
    ann_file = osp.join(root, 'annotations', f'instances_{split}.json')
    with atomic_open(ann_file) as f:
        json.dump(dict(images=images, annotations=annotations, categories=[
            dict(id=k + 1, name=n) for k, n in enumerate(CLASSES)]), f)
    return ann_file


def generate_shapes_dataset(root: str, num_train: int = 400, num_val: int = 60,
                            image_size: int = 256, seed: int = 0,
                            progress: Optional[Callable[[str], None]] = None) -> dict:
    """Generate both splits under ``root`` (replacing what is there).

    Returns:
        dict: split name -> annotation file.
    """
    for split in _SPLIT_SEEDS:
        shutil.rmtree(osp.join(root, split), ignore_errors=True)
    return {split: generate_split(root, split, n, image_size, seed, progress)
            for split, n in (('train', num_train), ('val', num_val))}
