"""DIOR horizontal-box detection as an mmdet COCO dataset, under two evaluation protocols."""
import os.path as osp
from collections import OrderedDict
from typing import Dict, Optional

from mmcv.utils import print_log

from mmdet.datasets import DATASETS, CocoDataset

from .checks import DataError, SampleCheckMixin
from .meta import DIOR_CLASSES

__all__ = ['DIORDataset', 'DIOR_PROTOCOLS', 'CocoBoxChecksMixin']

#: ``evaluate_empty_images`` option -> the tag written to the metrics (``dior.protocol``).
DIOR_PROTOCOLS: Dict[bool, str] = OrderedDict([(True, 'all-images'),
                                               (False, 'release-images-with-boxes')])


class CocoBoxChecksMixin:
    """Checks of COCO-json boxes (mix in before :class:`~rscotr.datasets.checks.SampleCheckMixin`).

    A box with zero or negative width or height, or reaching outside its
    image, raises :class:`~rscotr.datasets.checks.DataError` when its image's
    annotations are read (mmdet would drop such boxes, or keep them,
    silently); with :class:`~rscotr.datasets.checks.SampleCheckMixin`, an
    image whose size differs from its json entry too.
    """

    def _parse_ann_info(self, img_info, ann_info):
        path = osp.join(self.img_prefix or '', img_info['filename'])
        width, height = img_info['width'], img_info['height']
        for ann in ann_info:
            if ann.get('ignore', False) or ann.get('iscrowd', False):
                continue
            x, y, w, h = ann['bbox']
            if w <= 0 or h <= 0:
                raise DataError(path, f'box {ann["bbox"]} (x, y, w, h; annotation id '
                                f'{ann.get("id")} in {self.ann_file}) has zero area')
            if x < 0 or y < 0 or x + w > width or y + h > height:
                raise DataError(path, f'box {ann["bbox"]} (x, y, w, h; annotation id '
                                f'{ann.get("id")} in {self.ann_file}) reaches outside the '
                                f'{width}x{height} image')
        return super()._parse_ann_info(img_info, ann_info)

    def check_annotations(self, results, path):
        info = results.get('img_info') or {}
        shape = results['img'].shape[:2]
        if 'height' in info and tuple(shape) != (info['height'], info['width']):
            raise DataError(path, f'image of {shape[1]}x{shape[0]} pixels where '
                            f'{self.ann_file} says {info["width"]}x{info["height"]}')


@DATASETS.register_module()
class DIORDataset(CocoBoxChecksMixin, SampleCheckMixin, CocoDataset):
    """DIOR as prepared by ``tools/dataset_converters/dior.py``.

    ``ann_file=<prepared>/annotations/dior_<split>.json``; the json's
    ``file_name`` entries are relative to the DIOR root, so
    ``img_prefix=<DIOR root>`` for every split. Every class of
    :data:`~rscotr.datasets.meta.DIOR_CLASSES` must be a category of the json
    (a mismatch is an error, not a silently smaller dataset).

    Evaluate with ``metric='bbox', iou_thrs=[0.5], classwise=True`` so that
    ``bbox_mAP`` is the class-wise COCO AP at IoU 0.5 (README: Results).

    Two evaluation protocols (``evaluate_empty_images``), named in the metrics
    as ``protocol`` (``dior.protocol`` in the eval / test json) so that figures
    of the two are never mixed up:

    - ``True`` (the default, tagged ``'all-images'``): every image of the split
      is evaluated; boxes predicted on an image without objects are false
      positives.
    - ``False`` (the released RSCoTr, tagged ``'release-images-with-boxes'``):
      the release builds its DIOR val/test sets without ``test_mode``, so
      mmdet's ``CocoDataset`` leaves images without boxes (and images under
      32 px) out of the dataset, and so out of COCOeval's image ids; false
      positives on those images do not count. Here the same filter
      (mmdet's own ``_filter_imgs``) is applied to a dataset built for
      evaluation (``test_mode=True``, which keeps the test pipeline).

    A training dataset (``test_mode=False``) is not evaluated: it drops
    images without boxes when ``filter_empty_gt`` (mmdet's rule), whatever
    ``evaluate_empty_images`` says.

    Every sample is checked when it is loaded (see :mod:`rscotr.datasets.checks`):
    besides the image checks, a box with zero or negative width or height, or
    reaching outside the image, and an image whose size differs from its
    annotation, raise :class:`~rscotr.datasets.checks.DataError` (mmdet would
    drop such boxes, or keep them, silently).

    Args:
        evaluate_empty_images: Evaluate images without boxes too (True), or
            leave them out as the release did (False).
        on_bad_sample: 'error' or 'skip'.
        bands: Bands every image must have (None: not checked).
        **kwargs: :class:`mmdet.datasets.CocoDataset` arguments.
    """

    CLASSES = DIOR_CLASSES
    PALETTE = None

    def __init__(self, *args, evaluate_empty_images: bool = True, on_bad_sample: str = 'error',
                 bands: Optional[int] = 3, **kwargs):
        if not isinstance(evaluate_empty_images, bool):
            raise ValueError('DIORDataset: evaluate_empty_images must be True (every image) '
                             f'or False (the release: images with boxes only), got '
                             f'{evaluate_empty_images!r}')
        super().__init__(*args, **kwargs)
        self.evaluate_empty_images = evaluate_empty_images
        if self.test_mode and not evaluate_empty_images:
            # what mmdet does to a dataset built without test_mode (the release's
            # val/test sets): images without boxes leave data_infos and img_ids
            filter_empty_gt, self.filter_empty_gt = self.filter_empty_gt, True
            keep = self._filter_imgs()
            self.filter_empty_gt = filter_empty_gt
            self.data_infos = [self.data_infos[i] for i in keep]
        self._init_checks(on_bad_sample, bands)

    @property
    def protocol_tag(self) -> str:
        """The protocol as it is written to the metrics: 'all-images' or
        'release-images-with-boxes'."""
        return DIOR_PROTOCOLS[self.evaluate_empty_images]

    def evaluate(self, results, metric='bbox', logger=None, **kwargs) -> 'OrderedDict[str, object]':
        """mmdet's COCO evaluation of the images of this dataset (see the class doc).

        Returns:
            OrderedDict: ``protocol`` (``'all-images'`` or
            ``'release-images-with-boxes'``) first, then mmdet's metrics
            (``bbox_mAP``, ``bbox_mAP_50``, ...).
        """
        print_log(f'DIOR protocol: {self.protocol_tag} ({len(self)} images evaluated)',
                  logger=logger)
        metrics = super().evaluate(results, metric=metric, logger=logger, **kwargs)
        out = OrderedDict(protocol=self.protocol_tag)
        out.update(metrics)
        return out

    def load_annotations(self, ann_file):
        data_infos = super().load_annotations(ann_file)
        if len(self.cat_ids) != len(self.CLASSES):
            names = {c['name'] for c in self.coco.dataset.get('categories', [])}
            missing = [c for c in self.CLASSES if c not in names]
            raise ValueError(f'{ann_file}: categories {missing} of DIOR are missing '
                             f'(json categories: {sorted(names)})')
        return data_infos
