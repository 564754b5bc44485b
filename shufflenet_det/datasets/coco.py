"""COCO loading that fails loudly on broken data instead of training on it.

Why this exists: pycocotools and MMDetection's :class:`~mmdet.datasets.CocoDataset`
trust the annotation file and the images. A malformed JSON file surfaces as a bare
``json.JSONDecodeError`` (no file name), a missing ``annotations`` key as an empty
dataset, an annotation pointing at an unknown image as an instance that silently
never appears, a duplicated annotation id as one box counted twice and another
lost. An image that cannot be decoded fails with ``AssertionError: failed to load
image`` in mmcv 2.1 -- but that ``assert`` disappears under ``python -O`` (where the
error becomes ``'NoneType' object has no attribute 'shape'``), an empty file gives an
OpenCV error without the file name, and the pillow backend never names the file.

This module provides:

* :class:`ValidatedCOCO`, a COCO API that checks the annotation file in one
  O(n) pass while building the index (the JSON is parsed once);
* :class:`ValidatedCocoDataset`, ``CocoDataset`` built on it (``type='ValidatedCocoDataset'``
  in a config);
* :class:`StrictLoadImageFromFile`, ``LoadImageFromFile`` that raises a
  ``ValueError`` naming the file whenever an image cannot be decoded, in the main
  process and in DataLoader workers alike, with or without ``-O``.
"""
import json
import logging
import math
import os
import os.path as osp
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmdet.datasets import CocoDataset
from mmdet.datasets.api_wrappers import COCO
from mmdet.registry import DATASETS, TRANSFORMS
from mmengine import fileio
from mmengine.logging import print_log

from ..errors import InputError, InputFileNotFoundError

#: What :class:`ValidatedCOCO` expects, quoted in its errors.
COCO_LAYOUT = ('a COCO detection file is a JSON object {"images": [{"id", "file_name", '
               '"width", "height"}, ...], "annotations": [{"id", "image_id", "category_id", '
               '"bbox": [x, y, w, h], "area"}, ...], "categories": [{"id", "name"}, ...]}')
#: How many annotation ids the skipped-box warning lists.
NUM_IDS_SHOWN = 5

_REQUIRED_LISTS = ('images', 'annotations', 'categories')
_IMAGE_KEYS = ('id', 'file_name', 'width', 'height')
_CATEGORY_KEYS = ('id', 'name')
_NUMBER = (int, float)
_ID = (int, str)


class AnnotationError(InputError, ValueError):
    """An annotation file that cannot be used: the message names the file and the problem."""


class ImageDecodeError(InputError, ValueError):
    """An image file whose bytes are not a decodable image: the message names the file."""


def _is_finite_number(value) -> bool:
    # type() rather than isinstance(): a JSON ``true`` is a bool, which isinstance counts
    # as an int.
    if type(value) not in _NUMBER:
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _is_box(bbox) -> bool:
    # Unrolled: this runs once per annotation (860k in COCO train2017).
    if type(bbox) is not list or len(bbox) != 4:
        return False
    x, y, w, h = bbox
    if not (type(x) in _NUMBER and type(y) in _NUMBER and type(w) in _NUMBER
            and type(h) in _NUMBER):
        return False
    try:
        return math.isfinite(x + y + w + h)  # any NaN or infinity makes the sum one
    except OverflowError:
        return False


def load_coco_json(path: str) -> dict:
    """Parse a COCO annotation file, with errors that name the file.

    Args:
        path (str): the annotation file.

    Returns:
        dict: the parsed top-level object (not validated beyond being an object).

    Raises:
        AnnotationError: the file is not valid UTF-8 JSON, or its top level is not an object.
    """
    with open(path, 'rb') as f:
        raw = f.read()
    try:
        # Bytes, so json detects UTF-8/16/32 and a BOM as the JSON standard allows.
        dataset = json.loads(raw)
    except json.JSONDecodeError as e:
        raise AnnotationError(
            f'{path} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno} '
            f'(char {e.pos})') from e
    except UnicodeDecodeError as e:
        raise AnnotationError(f'{path} is not valid JSON: not UTF-8 text ({e})') from e
    if not isinstance(dataset, dict):
        raise AnnotationError(
            f'{path}: the top level is a JSON {type(dataset).__name__}, not an object; '
            f'expected {COCO_LAYOUT}')
    return dataset


def _check_records(path: str, records: list, key: str, required: tuple) -> set:
    """Check ``images`` or ``categories`` entries; return their ids."""
    ids = set()
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise AnnotationError(
                f'{path}: {key}[{i}] is a {type(record).__name__}, not an object; '
                f'expected {COCO_LAYOUT}')
        missing = [k for k in required if k not in record]
        if missing:
            raise AnnotationError(
                f'{path}: {key}[{i}] (id {record.get("id")!r}) has no '
                f'{", ".join(map(repr, missing))}; expected {COCO_LAYOUT}')
        rid = record['id']
        if type(rid) not in _ID:
            raise AnnotationError(
                f'{path}: {key}[{i}] has id {rid!r}; ids must be integers or strings')
        if rid in ids:
            raise AnnotationError(f'{path}: {key} id {rid!r} appears more than once')
        ids.add(rid)
    return ids


def _check_annotation(path: str, i: int, ann, ann_ids: set, image_ids: set,
                      category_ids: set):
    """Check ``annotations[i]``; returns its id. Raises AnnotationError naming the problem."""
    if not isinstance(ann, dict):
        raise AnnotationError(
            f'{path}: annotations[{i}] is a {type(ann).__name__}, not an object; '
            f'expected {COCO_LAYOUT}')
    ann_id = ann.get('id')
    if type(ann_id) not in _ID:
        raise AnnotationError(
            f'{path}: annotations[{i}] has id {ann_id!r}; every annotation needs an '
            f'integer or string "id"')
    if ann_id in ann_ids:
        raise AnnotationError(f'{path}: annotation id {ann_id!r} appears more than once')
    bbox = ann.get('bbox')
    if not _is_box(bbox):
        raise AnnotationError(
            f'{path}: annotation id {ann_id!r} has bbox {bbox!r}; expected 4 finite '
            f'numbers [x, y, w, h]')
    if not _is_finite_number(ann.get('area')):
        raise AnnotationError(
            f'{path}: annotation id {ann_id!r} has area {ann.get("area")!r}; expected a '
            f'number')
    image_id = ann.get('image_id')
    if image_id not in image_ids:
        raise AnnotationError(
            f'{path}: annotation id {ann_id!r} has image_id {image_id!r}, which is not '
            f'among the {len(image_ids)} ids in "images"')
    category_id = ann.get('category_id')
    if category_id not in category_ids:
        raise AnnotationError(
            f'{path}: annotation id {ann_id!r} has category_id {category_id!r}, which is '
            f'not among the category ids {sorted(category_ids, key=str)}')
    return ann_id


def validate_coco_dict(dataset: dict, path: str) -> tuple[dict, list]:
    """Check a parsed COCO detection file and drop boxes with non-positive size.

    One pass over each list (COCO train2017's 860k annotations take about a second).

    Args:
        dataset (dict): the parsed file; not modified.
        path (str): the file's name, for the messages.

    Returns:
        tuple[dict, list]: a shallow copy of ``dataset`` whose ``annotations`` leave out
        the boxes with ``w <= 0`` or ``h <= 0``, and those boxes' annotation ids.

    Raises:
        AnnotationError: a missing or non-list ``images``/``annotations``/``categories``;
            an image or category without its required keys, or a duplicated id; an
            annotation that is not an object, has no or a duplicated ``id``, has no
            4-number finite ``bbox`` or numeric ``area``, or whose ``image_id`` /
            ``category_id`` is not among ``images`` / ``categories``.
    """
    for key in _REQUIRED_LISTS:
        if key not in dataset:
            raise AnnotationError(
                f'{path} has no {key!r} key (it has {sorted(dataset)}); '
                f'expected {COCO_LAYOUT}')
        if not isinstance(dataset[key], list):
            raise AnnotationError(
                f'{path}: {key!r} is a JSON {type(dataset[key]).__name__}, not a list; '
                f'expected {COCO_LAYOUT}')
    image_ids = _check_records(path, dataset['images'], 'images', _IMAGE_KEYS)
    category_ids = _check_records(path, dataset['categories'], 'categories', _CATEGORY_KEYS)

    kept, skipped, ann_ids = [], [], set()
    for i, ann in enumerate(dataset['annotations']):
        ann_id = _check_annotation(path, i, ann, ann_ids, image_ids, category_ids)
        ann_ids.add(ann_id)
        if ann['bbox'][2] <= 0 or ann['bbox'][3] <= 0:
            skipped.append(ann_id)
        else:
            kept.append(ann)
    checked = dict(dataset)
    checked['annotations'] = kept
    return checked, skipped


class ValidatedCOCO(COCO):
    """The COCO API, checking the annotation file while it builds the index.

    Errors (:class:`AnnotationError`, a ``ValueError``) name the file and, for an
    annotation, its id: a file that is not JSON (with line and column), a top level
    that is not an object, missing or non-list ``images``/``annotations``/``categories``,
    an annotation without a 4-number ``bbox`` or a numeric ``area`` (``CocoDataset``
    reads both), or with an ``image_id`` / ``category_id`` that the file does not
    define, duplicated ids (pycocotools would silently keep only the last). A file
    without ``annotations`` is refused too, so an image-info-only file such as COCO's
    test-dev list needs ``"annotations": []`` added.

    Boxes with non-positive width or height are *skipped*, with one warning on the
    current MMEngine logger giving the file, their count and the first few ids. They
    are skipped rather than refused because large real annotation files can contain a
    few degenerate boxes and MMDetection's ``CocoDataset`` already drops every box under 1 px
    (``w < 1 or h < 1``): failing would make the real dataset unusable for no gain,
    while counting them still says that the file is not clean. Skipped boxes are
    absent from this object's index, so from the dataset's instances (the evaluator,
    which reads the file with its own COCO object, still sees them as ground truth,
    as with plain MMDetection).

    The JSON is parsed once, here; the parsed dict goes to pycocotools' ``createIndex``.

    Args:
        annotation_file (str, optional): the COCO JSON file; ``None`` for an empty
            object, as in pycocotools.
    """

    def __init__(self, annotation_file: Optional[str] = None):
        super().__init__(annotation_file=None)
        self.skipped_ann_ids = []
        if annotation_file is None:
            return
        path = os.fspath(annotation_file)
        dataset, skipped = validate_coco_dict(load_coco_json(path), path)
        if skipped:
            shown = ', '.join(map(repr, skipped[:NUM_IDS_SHOWN]))
            more = ', ...' if len(skipped) > NUM_IDS_SHOWN else ''
            print_log(
                f'{path}: skipped {len(skipped)} box(es) with non-positive width or height '
                f'(annotation ids {shown}{more})', logger='current', level=logging.WARNING)
        self.skipped_ann_ids = skipped
        self.dataset = dataset
        self.createIndex()
        # mmdet's snake-case aliases, set by COCO.__init__ on the empty index.
        self.img_ann_map = self.imgToAnns
        self.cat_img_map = self.catToImgs

    @property
    def num_skipped_boxes(self) -> int:
        """How many boxes with non-positive width or height were left out."""
        return len(self.skipped_ann_ids)


def strict_image_loading(transform):
    """``transform`` with mmcv's ``LoadImageFromFile`` replaced by :class:`StrictLoadImageFromFile`.

    Accepts a transform config (``type`` given as a name or as the class) or a built
    transform; anything else is returned unchanged.
    """
    if isinstance(transform, dict) and transform.get('type') in _PLAIN_LOADERS:
        return {**transform, 'type': StrictLoadImageFromFile}
    if type(transform) is LoadImageFromFile:
        strict = StrictLoadImageFromFile.__new__(StrictLoadImageFromFile)
        strict.__dict__.update(transform.__dict__)
        return strict
    return transform


@DATASETS.register_module()
class ValidatedCocoDataset(CocoDataset):
    """``CocoDataset`` whose annotation file goes through :class:`ValidatedCOCO`, and whose
    images load through :class:`StrictLoadImageFromFile`.

    A drop-in replacement (``type='ValidatedCocoDataset'``): the same arguments and
    data, but a broken annotation file fails at construction with an error that names
    it, degenerate boxes are skipped with a counted warning, and an undecodable image
    fails naming the file. The pipeline keeps mmcv's ``LoadImageFromFile`` by name in
    the config, which MMDetection's ``DetInferencer`` and ``inference_detector`` look
    for; this dataset swaps in the strict loader when it builds the pipeline.
    """

    COCOAPI = ValidatedCOCO

    def __init__(self, *args, pipeline=(), **kwargs) -> None:
        super().__init__(*args, pipeline=[strict_image_loading(t) for t in pipeline], **kwargs)


@TRANSFORMS.register_module()
class StrictLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` that raises :class:`ImageDecodeError` naming an undecodable image.

    mmcv 2.1's transform relies on ``assert img is not None`` (gone under ``python -O``),
    lets an empty file fail inside OpenCV and the pillow backend fail without the
    file's name, and with ``ignore_empty=True`` turns a decoding error into ``None``,
    which MMEngine's ``BaseDataset`` answers in training by silently fetching another
    index. Here decoding errors always raise ``ImageDecodeError('cannot decode image
    <path>: ...')`` (a ``ValueError``); ``ignore_empty=True`` only covers a file that cannot be read
    (missing), and each such skip is logged as a warning.

    Args: as :class:`mmcv.transforms.LoadImageFromFile`.
    """

    def transform(self, results: dict) -> Optional[dict]:
        """Read and decode ``results['img_path']``.

        Args:
            results (dict): with ``img_path``.

        Returns:
            dict | None: ``results`` with ``img``, ``img_shape`` and ``ori_shape``;
            ``None`` only for an unreadable file with ``ignore_empty=True``.

        Raises:
            ImageDecodeError: the file's bytes are not a decodable image.
        """
        filename = results['img_path']
        try:
            if self.file_client_args is not None:
                file_client = fileio.FileClient.infer_client(self.file_client_args, filename)
                img_bytes = file_client.get(filename)
            else:
                img_bytes = fileio.get(filename, backend_args=self.backend_args)
        except Exception as e:
            if self.ignore_empty:
                print_log(f'skipping unreadable image {filename} (ignore_empty=True): {e}',
                          logger='current', level=logging.WARNING)
                return None
            raise
        try:
            img = mmcv.imfrombytes(img_bytes, flag=self.color_type,
                                   backend=self.imdecode_backend)
        except Exception as e:
            raise ImageDecodeError(
                f'cannot decode image {filename}: {type(e).__name__}: {e}') from e
        if img is None:
            raise ImageDecodeError(
                f'cannot decode image {filename}: the {self.imdecode_backend} decoder '
                f'returned nothing for its {len(img_bytes)} bytes (not an image, or '
                f'truncated)')
        if self.to_float32:
            img = img.astype('float32')
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results


def read_image(path: str) -> np.ndarray:
    """The BGR image at ``path`` (as the detection pipelines load it).

    Raises:
        InputFileNotFoundError: ``path`` does not exist.
        ImageDecodeError: the file is not a decodable image.
    """
    if not osp.isfile(path):
        raise InputFileNotFoundError(f'image not found: {path}')
    try:
        image = mmcv.imread(path)
    except Exception as exc:
        raise ImageDecodeError(f'cannot decode image {path}: {type(exc).__name__}: {exc}') from exc
    if image is None:
        raise ImageDecodeError(f'cannot decode image {path}: not an image, or truncated')
    return image


_PLAIN_LOADERS = ('LoadImageFromFile', 'mmcv.LoadImageFromFile', LoadImageFromFile)
