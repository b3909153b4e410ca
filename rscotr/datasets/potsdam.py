"""ISPRS Potsdam semantic segmentation as an mmseg dataset."""
import os.path as osp
from typing import Optional, Sequence

from mmseg.datasets import DATASETS, CustomDataset

from .checks import SampleCheckMixin, check_label_map
from .meta import POTSDAM_CLASSES, POTSDAM_IGNORE_INDEX, POTSDAM_PALETTE


@DATASETS.register_module()
class PotsdamIndexDataset(SampleCheckMixin, CustomDataset):
    """Potsdam patches with index labels (``tools/dataset_converters/potsdam.py``).

    ``img_dir=<prepared>/img_dir/<split>``, ``ann_dir=<prepared>/ann_dir/<split>``
    (PNGs with the same stems). Prepared labels are 0..4 for the trained
    classes, 5 for clutter and 255 for boundaries.

    The dataset has the 5 trained classes. Labels listed in ``ignore_labels``
    (clutter, 5) are mapped to ``ignore_index`` (255) when a label map is
    loaded -- through mmseg's ``label_map`` mechanism, which ``LoadAnnotations``
    applies both in the training pipeline and when :meth:`evaluate` /
    :meth:`pre_eval` read the ground truth. So training and evaluation see one
    ignore value, 255, and clutter pixels count in neither loss nor metrics.
    (mmseg's own ``PotsdamDataset`` keeps 6 classes and ``reduce_zero_label``
    for a different label encoding; it is not used here.)

    Every sample is checked when it is loaded (see :mod:`rscotr.datasets.checks`):
    besides the image checks, a label map with a value that is neither a
    class index nor the ignore index (after ``ignore_labels`` are mapped), or
    of another size than its image, raises
    :class:`~rscotr.datasets.checks.DataError`.

    Args:
        ignore_labels: Prepared label values to ignore (mapped to ``ignore_index``).
        on_bad_sample: 'error' or 'skip'.
        bands: Bands every image must have (None: not checked).
        **kwargs: :class:`mmseg.datasets.CustomDataset` arguments
            (``img_suffix``/``seg_map_suffix`` default to ``'.png'``).
    """

    CLASSES = POTSDAM_CLASSES[:5]
    PALETTE = [list(c) for c in POTSDAM_PALETTE[:5]]
    has_label_maps = True

    def __init__(self, ignore_labels: Sequence[int] = (5, ), on_bad_sample: str = 'error',
                 bands: Optional[int] = 3, **kwargs):
        kwargs.setdefault('img_suffix', '.png')
        kwargs.setdefault('seg_map_suffix', '.png')
        kwargs.setdefault('ignore_index', POTSDAM_IGNORE_INDEX)
        if kwargs.get('reduce_zero_label'):
            raise ValueError('Potsdam index labels use 0 for a class: '
                             'reduce_zero_label must be False')
        super().__init__(**kwargs)
        self.ignore_labels = tuple(int(v) for v in ignore_labels)
        self._init_checks(on_bad_sample, bands)

    def check_annotations(self, results, path):
        seg = results.get('gt_semantic_seg')
        if seg is not None:
            seg_path = osp.join(results.get('seg_prefix') or '', results['ann_info']['seg_map'])
            check_label_map(seg, len(self.CLASSES), self.ignore_index, seg_path,
                            results['img'].shape)

    def pre_pipeline(self, results):
        super().pre_pipeline(results)
        label_map = dict(results.get('label_map') or {})
        label_map.update({label: self.ignore_index for label in self.ignore_labels})
        results['label_map'] = label_map
