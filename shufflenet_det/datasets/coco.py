"""COCO loading that fails loudly on broken data instead of training or evaluating on it.

* :class:`ValidatedCOCO`: the COCO API, checking the annotation file in one O(n) pass
  while building the index (the JSON is parsed once; the checks are in
  :mod:`.coco_schema`), and looking categories up by name;
* :class:`ValidatedCocoDataset`: ``CocoDataset`` built on it (``type='ValidatedCocoDataset'``
  in a config), loading its images through
  :class:`~shufflenet_det.datasets.image_loading.StrictLoadImageFromFile`.
"""
import logging
import os
from collections.abc import Sequence
from typing import Optional

from mmdet.datasets import CocoDataset
from mmdet.datasets.api_wrappers import COCO
from mmdet.registry import DATASETS
from mmengine.logging import print_log

from .coco_schema import (NUM_IDS_SHOWN, AnnotationError, category_ids_by_name, load_coco_json,
                          validate_coco_dict)
from .image_loading import check_resize_keeps_pixels, keep_ratio_scales, strict_image_loading


class ValidatedCOCO(COCO):
    """The COCO API, checking the annotation file while it builds the index.

    Errors (:class:`~.coco_schema.AnnotationError`, a ``ValueError``) name the file and,
    for an annotation, its id: a file that is not JSON (with line and column), a top
    level that is not an object, missing or non-list ``images``/``annotations``/``categories``,
    an annotation without a 4-number ``bbox`` or a numeric ``area`` (``CocoDataset``
    reads both), or with an ``image_id`` / ``category_id`` that the file does not
    define, duplicated ids (pycocotools would silently keep only the last). A file
    without ``annotations`` is refused too, so an image-info-only file such as COCO's
    test-dev list needs ``"annotations": []`` added.

    Boxes with non-positive width or height are *skipped*, with one warning on the
    current MMEngine logger giving the file, their count and the first few ids. They
    are skipped rather than refused because large real annotation files can contain a
    few degenerate boxes and MMDetection's ``CocoDataset`` already drops every box under
    1 px (``w < 1 or h < 1``): failing would make the real dataset unusable for no gain,
    while counting them still says that the file is not clean. The evaluator keeps them
    as ground truth (``skip_degenerate_boxes=False``), as pycocotools does.

    :meth:`get_cat_ids` given class names returns their ids in the order of the names,
    not in the file's order (see :func:`~.coco_schema.category_ids_by_name`).

    Args:
        annotation_file (str, optional): the COCO JSON file; ``None`` for an empty
            object, as in pycocotools.
        skip_degenerate_boxes (bool): leave the boxes with non-positive width or height
            out of the index, with the warning. Default: True.
    """

    def __init__(self, annotation_file: Optional[str] = None,
                 skip_degenerate_boxes: bool = True):
        super().__init__(annotation_file=None)
        self.skipped_ann_ids = []
        self.annotation_file = None
        if annotation_file is None:
            return
        path = self.annotation_file = os.fspath(annotation_file)
        raw = load_coco_json(path)
        dataset, skipped = validate_coco_dict(raw, path)
        if not skip_degenerate_boxes:
            dataset['annotations'], skipped = raw['annotations'], []
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

    def get_cat_ids(self, cat_names: Sequence[str] = (), sup_names: Sequence[str] = (),
                    cat_ids: Sequence = ()) -> list:
        """Category ids; given ``cat_names`` alone, the id of each name in their order.

        ``CocoDataset`` and ``CocoMetric`` number the labels by the ids this returns for
        ``metainfo['classes']``. pycocotools returns them in the order of the file's
        ``categories``, so a file listing the same categories in another order swapped
        the labels silently; here label ``i`` is the category named ``classes[i]``.

        Raises:
            AnnotationError: a name that no category has, or that several share.
        """
        names = [cat_names] if isinstance(cat_names, str) else list(cat_names)
        if names and not sup_names and not cat_ids:
            return category_ids_by_name(self.dataset['categories'], names, self.annotation_file)
        return super().get_cat_ids(cat_names=list(cat_names), sup_names=list(sup_names),
                                   cat_ids=list(cat_ids))


@DATASETS.register_module()
class ValidatedCocoDataset(CocoDataset):
    """``CocoDataset`` whose annotation file goes through :class:`ValidatedCOCO`, and whose
    images load through :class:`~.image_loading.StrictLoadImageFromFile`.

    A drop-in replacement (``type='ValidatedCocoDataset'``): the same arguments and
    data, but

    * a broken annotation file fails at construction with an error that names it,
      degenerate boxes are skipped with a counted warning;
    * label ``i`` is the category named ``metainfo['classes'][i]``, whatever the order
      of the file's ``categories``; a class name the file does not define is an error;
    * a file without images, or a training set that ``filter_cfg`` leaves empty (no
      annotations, or none of the classes), is an :class:`~.coco_schema.AnnotationError`;
    * an image that the pipeline's keep-ratio ``Resize`` would shrink to 0 pixels on one
      side (by the size the file records) is an error naming it;
    * a missing or undecodable image fails naming the file.

    The pipeline keeps mmcv's ``LoadImageFromFile`` by name in the config, which
    MMDetection's ``DetInferencer`` and ``inference_detector`` look for; this dataset
    swaps in the strict loader when it builds the pipeline.
    """

    COCOAPI = ValidatedCOCO

    def __init__(self, *args, pipeline=(), **kwargs) -> None:
        super().__init__(*args, pipeline=[strict_image_loading(t) for t in pipeline], **kwargs)

    def filter_data(self) -> list[dict]:
        """``CocoDataset.filter_data``, refusing a dataset with nothing left in it.

        Raises:
            AnnotationError: the file lists no images, or (in training) no image with a
                box of the classes is left.
            ImageFileError: an image that the pipeline's resize would make 0 px on a side.
        """
        data_list = super().filter_data()
        if not data_list or not (self.test_mode or any(i['instances'] for i in data_list)):
            raise self._nothing_left()
        scales = keep_ratio_scales(self.pipeline.transforms)
        for info in data_list:
            check_resize_keeps_pixels(info['img_path'], info['width'], info['height'], scales)
        return data_list

    def _nothing_left(self) -> AnnotationError:
        if not self.data_list:
            return AnnotationError(f'{self.ann_file} lists no images: there is nothing to '
                                   f'{"test" if self.test_mode else "train"} on')
        boxes = sum(len(info['instances']) for info in self.data_list)
        classes = len(self.metainfo['classes'])
        if not boxes:
            return AnnotationError(
                f'{self.ann_file}: its {len(self.data_list)} images hold no box of the '
                f'{classes} classes (an empty or unmatched "annotations" list): there is '
                f'nothing to train on')
        return AnnotationError(
            f'{self.ann_file}: filter_cfg={dict(self.filter_cfg)} left none of its '
            f'{len(self.data_list)} images ({boxes} boxes of the {classes} classes) for '
            f'training')
