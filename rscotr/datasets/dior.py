"""DIOR horizontal-box detection as an mmdet COCO dataset."""
from mmdet.datasets import DATASETS, CocoDataset

from .meta import DIOR_CLASSES


@DATASETS.register_module()
class DIORDataset(CocoDataset):
    """DIOR as prepared by ``tools/dataset_converters/dior.py``.

    ``ann_file=<prepared>/annotations/dior_<split>.json``; the json's
    ``file_name`` entries are relative to the DIOR root, so
    ``img_prefix=<DIOR root>`` for every split. Every class of
    :data:`~rscotr.datasets.meta.DIOR_CLASSES` must be a category of the json
    (a mismatch is an error, not a silently smaller dataset).

    Evaluate with ``metric='bbox', iou_thrs=[0.5], classwise=True`` so that
    ``bbox_mAP`` is the class-wise COCO AP at IoU 0.5 (DESIGN.md section 4).
    """

    CLASSES = DIOR_CLASSES
    PALETTE = None

    def load_annotations(self, ann_file):
        data_infos = super().load_annotations(ann_file)
        if len(self.cat_ids) != len(self.CLASSES):
            names = {c['name'] for c in self.coco.dataset.get('categories', [])}
            missing = [c for c in self.CLASSES if c not in names]
            raise ValueError(f'{ann_file}: categories {missing} of DIOR are missing '
                             f'(json categories: {sorted(names)})')
        return data_infos
