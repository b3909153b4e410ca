"""DIOR horizontal-box detection as an mmdet COCO dataset."""
import os.path as osp
from typing import Optional

from mmdet.datasets import DATASETS, CocoDataset

from .checks import DataError, SampleCheckMixin
from .meta import DIOR_CLASSES


@DATASETS.register_module()
class DIORDataset(SampleCheckMixin, CocoDataset):
    """DIOR as prepared by ``tools/dataset_converters/dior.py``.

    ``ann_file=<prepared>/annotations/dior_<split>.json``; the json's
    ``file_name`` entries are relative to the DIOR root, so
    ``img_prefix=<DIOR root>`` for every split. Every class of
    :data:`~rscotr.datasets.meta.DIOR_CLASSES` must be a category of the json
    (a mismatch is an error, not a silently smaller dataset).

    Evaluate with ``metric='bbox', iou_thrs=[0.5], classwise=True`` so that
    ``bbox_mAP`` is the class-wise COCO AP at IoU 0.5 (README: Results).

    Every sample is checked when it is loaded (see :mod:`rscotr.datasets.checks`):
    besides the image checks, a box with zero or negative width or height, or
    reaching outside the image, and an image whose size differs from its
    annotation, raise :class:`~rscotr.datasets.checks.DataError` (mmdet would
    drop such boxes, or keep them, silently).

    Args:
        on_bad_sample: 'error' or 'skip'.
        bands: Bands every image must have (None: not checked).
        **kwargs: :class:`mmdet.datasets.CocoDataset` arguments.
    """

    CLASSES = DIOR_CLASSES
    PALETTE = None

    def __init__(self, *args, on_bad_sample: str = 'error', bands: Optional[int] = 3,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self._init_checks(on_bad_sample, bands)

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

    def load_annotations(self, ann_file):
        data_infos = super().load_annotations(ann_file)
        if len(self.cat_ids) != len(self.CLASSES):
            names = {c['name'] for c in self.coco.dataset.get('categories', [])}
            missing = [c for c in self.CLASSES if c not in names]
            raise ValueError(f'{ann_file}: categories {missing} of DIOR are missing '
                             f'(json categories: {sorted(names)})')
        return data_infos
