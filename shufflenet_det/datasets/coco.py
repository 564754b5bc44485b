"""COCO loading that fails naming the file on broken data, and maps labels by class name."""
import json
import logging
import math
import os
from typing import Optional

from mmdet.datasets import CocoDataset
from mmdet.datasets.api_wrappers import COCO
from mmdet.registry import DATASETS
from mmengine.logging import print_log

from ..errors import InputError
from .image_loading import check_resize_keeps_pixels, keep_ratio_scales, strict_image_loading

COCO_LAYOUT = ('a COCO detection file is a JSON object {"images": [{"id", "file_name", '
               '"width", "height"}, ...], "annotations": [{"id", "image_id", "category_id", '
               '"bbox": [x, y, w, h], "area"}, ...], "categories": [{"id", "name"}, ...]}')


class AnnotationError(InputError, ValueError):
    """An annotation file that cannot be used: the message names the file and the problem."""


def _quoted(values: list, limit: int = 5) -> str:
    return ', '.join(map(repr, values[:limit])) + (', ...' if len(values) > limit else '')


def _is_box(bbox) -> bool:
    # type(), not isinstance(): JSON's true is a bool, which isinstance counts as an int.
    return type(bbox) is list and len(bbox) == 4 and all(
        type(v) in (int, float) and abs(v) < math.inf for v in bbox)


def load_coco_json(path: str) -> dict:
    """Parse and check a COCO detection file.

    Raises:
        AnnotationError: not UTF-8 JSON, not an object, without ``images``/``annotations``/
            ``categories``, or an annotation with a duplicated id, no 4-number bbox, or an
            unknown ``image_id``/``category_id``.
    """
    with open(path, 'rb') as f:
        raw = f.read()
    try:
        dataset = json.loads(raw)  # bytes: json detects UTF-8/16/32 as the standard allows
    except json.JSONDecodeError as e:
        raise AnnotationError(f'{path} is not valid JSON: {e.msg} at line {e.lineno} column '
                              f'{e.colno} (char {e.pos})') from e
    except UnicodeDecodeError as e:
        raise AnnotationError(f'{path} is not valid JSON: not UTF-8 text ({e})') from e
    if not isinstance(dataset, dict):
        raise AnnotationError(f'{path}: the top level is a JSON {type(dataset).__name__}, not '
                              f'an object; expected {COCO_LAYOUT}')
    for key in ('images', 'annotations', 'categories'):
        if key not in dataset:
            raise AnnotationError(f'{path} has no {key!r} key (it has {sorted(dataset)}); '
                                  f'expected {COCO_LAYOUT}')
    image_ids = {image['id'] for image in dataset['images']}
    category_ids = {category['id'] for category in dataset['categories']}
    ann_ids = set()
    for ann in dataset['annotations']:
        ann_id = ann.get('id')
        if ann_id in ann_ids:
            problem = 'appears more than once'
        elif not _is_box(ann.get('bbox')):
            problem = f'has bbox {ann.get("bbox")!r}; expected 4 finite numbers [x, y, w, h]'
        elif ann.get('image_id') not in image_ids:
            problem = (f'has image_id {ann.get("image_id")!r}, which is not among the '
                       f'{len(image_ids)} ids in "images"')
        elif ann.get('category_id') not in category_ids:
            problem = (f'has category_id {ann.get("category_id")!r}, which is not among the '
                       f'category ids {sorted(category_ids, key=str)}')
        else:
            ann_ids.add(ann_id)
            continue
        raise AnnotationError(f'{path}: annotation id {ann_id!r} {problem}')
    return dataset


class ValidatedCOCO(COCO):
    """The COCO API on a file checked by :func:`load_coco_json`, looking categories up by name.

    Boxes with non-positive width or height are skipped with one warning counting them
    (real COCO files hold a few; mmdet drops boxes under 1 px anyway).

    Args:
        annotation_file (str, optional): the COCO JSON file; ``None`` for an empty object.
        skip_degenerate_boxes (bool): leave those boxes out (the evaluator keeps them as
            ground truth, as pycocotools does). Default: True.
    """

    def __init__(self, annotation_file: Optional[str] = None,
                 skip_degenerate_boxes: bool = True):
        super().__init__(annotation_file=None)
        self.annotation_file = None if annotation_file is None else os.fspath(annotation_file)
        if annotation_file is None:
            return
        self.dataset = load_coco_json(self.annotation_file)
        anns = self.dataset['annotations']
        skipped = [a['id'] for a in anns if min(a['bbox'][2:]) <= 0]
        if skipped and skip_degenerate_boxes:
            print_log(f'{self.annotation_file}: skipped {len(skipped)} box(es) with '
                      f'non-positive width or height (annotation ids {_quoted(skipped)})',
                      logger='current', level=logging.WARNING)
            self.dataset['annotations'] = [a for a in anns if min(a['bbox'][2:]) > 0]
        self.createIndex()
        self.img_ann_map, self.cat_img_map = self.imgToAnns, self.catToImgs  # mmdet's aliases

    def get_cat_ids(self, cat_names=(), sup_names=(), cat_ids=()) -> list:
        """Given ``cat_names`` alone, the id of the category named ``cat_names[i]`` for each i
        (pycocotools returns the file's order, which swapped labels silently).

        Raises:
            AnnotationError: a name that no category has, or that several share.
        """
        names = [cat_names] if isinstance(cat_names, str) else list(cat_names)
        if not names or sup_names or cat_ids:
            return super().get_cat_ids(names, list(sup_names), list(cat_ids))
        ids_of = {}
        for category in self.dataset['categories']:
            ids_of.setdefault(category['name'], []).append(category['id'])
        missing = [name for name in names if name not in ids_of]
        if missing:
            raise AnnotationError(
                f'{self.annotation_file}: no category is named {_quoted(missing)} '
                f'({len(missing)} of the {len(names)} class names in metainfo); the file\'s '
                f'categories are named {_quoted(list(ids_of), 10)}. Set '
                f'metainfo=dict(classes=(...)) to the names that the file uses')
        shared = [name for name in names if len(ids_of[name]) > 1]
        if shared:
            raise AnnotationError(f'{self.annotation_file}: categories {ids_of[shared[0]]} are '
                                  f'all named {shared[0]!r}; a class name must name one category')
        return [ids_of[name][0] for name in names]


@DATASETS.register_module()
class ValidatedCocoDataset(CocoDataset):
    """``CocoDataset`` on :class:`ValidatedCOCO`, loading images strictly.

    Besides, a dataset with nothing to use (no images; in training no box of the classes
    left) and an image that the keep-ratio ``Resize`` would make 0 px on a side are errors.
    """

    COCOAPI = ValidatedCOCO

    def __init__(self, *args, pipeline=(), **kwargs) -> None:
        super().__init__(*args, pipeline=[strict_image_loading(t) for t in pipeline], **kwargs)

    def filter_data(self) -> list[dict]:
        data_list = super().filter_data()
        if not self.data_list:
            raise AnnotationError(f'{self.ann_file} lists no images: there is nothing to '
                                  f'{"test" if self.test_mode else "train"} on')
        if not data_list or not (self.test_mode or any(i['instances'] for i in data_list)):
            boxes = sum(len(info['instances']) for info in self.data_list)
            images, classes = len(self.data_list), len(self.metainfo['classes'])
            if not boxes:
                raise AnnotationError(
                    f'{self.ann_file}: its {images} images hold no box of the {classes} '
                    f'classes (an empty or unmatched "annotations" list): there is nothing to '
                    f'train on')
            raise AnnotationError(
                f'{self.ann_file}: filter_cfg={dict(self.filter_cfg)} left none of its '
                f'{images} images ({boxes} boxes of the {classes} classes) for training')
        scales = keep_ratio_scales(self.pipeline.transforms)
        for info in data_list:
            check_resize_keeps_pixels(info['img_path'], info['width'], info['height'], scales)
        return data_list
