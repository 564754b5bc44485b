"""COCO evaluation that maps labels to categories by name and refuses nothing to evaluate.

MMDetection's ``CocoMetric`` numbers the labels by the order of the annotation file's
``categories``. A val file that lists the same categories in another order than the
training file (labelling tools export them in any order) has every prediction scored
as another class: a wrong mAP and exit status 0. A val file with an empty
``annotations`` list gives every AP as -1.000, without a word.
:class:`ValidatedCocoMetric` reads the file through
:class:`~shufflenet_det.datasets.ValidatedCOCO` instead, as the datasets do.
"""
from typing import Optional

from mmdet.evaluation import CocoMetric
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.fileio import get_local_path

from ..datasets import AnnotationError, ValidatedCOCO


@METRICS.register_module()
class ValidatedCocoMetric(CocoMetric):
    """``CocoMetric`` with label ``i`` scored as the category named ``classes[i]``.

    A drop-in replacement (``type='ValidatedCocoMetric'``), with the same arguments:

    * the annotation file is checked as by ``ValidatedCocoDataset`` (errors name the
      file); boxes with non-positive size stay ground truth, as in pycocotools;
    * the category of each class is looked up by name in the file's ``categories``
      when the dataset's ``metainfo`` arrives, before any image is processed; a class
      name the file does not define is an error. ``sort_categories`` is accepted and
      has nothing left to do;
    * a file without annotations is an :class:`~shufflenet_det.datasets.AnnotationError`
      (every AP would be -1), unless ``format_only=True``: predictions for a test server
      from an image list such as COCO test-dev need no ground truth.

    Args: as :class:`mmdet.evaluation.CocoMetric`.

    Raises:
        AnnotationError: a broken annotation file, or one without annotations when the
            metric is to evaluate.
    """

    def __init__(self, ann_file: Optional[str] = None, **kwargs) -> None:
        super().__init__(ann_file=None, **kwargs)
        if ann_file is None:
            return
        with get_local_path(ann_file, backend_args=self.backend_args) as local_path:
            self._coco_api = ValidatedCOCO(local_path, skip_degenerate_boxes=False)
        if not self._coco_api.dataset['annotations'] and not self.format_only:
            raise AnnotationError(
                f'{ann_file} has no annotations (it lists '
                f'{len(self._coco_api.dataset["images"])} images): there is nothing to '
                f'compute AP against. For predictions only (an image list such as COCO '
                f'test-dev), set the evaluator\'s format_only=True and outfile_prefix')

    @BaseMetric.dataset_meta.setter
    def dataset_meta(self, dataset_meta: Optional[dict]) -> None:
        """Set by the evaluation loop from the dataset; maps the classes to category ids."""
        BaseMetric.dataset_meta.fset(self, dataset_meta)
        if self._coco_api is not None and dataset_meta and dataset_meta.get('classes'):
            self.cat_ids = self._coco_api.get_cat_ids(cat_names=dataset_meta['classes'])

    def compute_metrics(self, results: list) -> dict:
        """``CocoMetric.compute_metrics``, refusing ground truth without a single box.

        Raises:
            AnnotationError: without ``ann_file``, the dataset gave no ground-truth box.
        """
        if self._coco_api is None and not self.format_only and results and \
                not any(gt['anns'] for gt, _ in results):
            raise AnnotationError(
                f'the {len(results)} evaluated images hold no ground-truth box: there is '
                f'nothing to compute AP against')
        return super().compute_metrics(results)
