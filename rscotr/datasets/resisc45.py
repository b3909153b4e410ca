"""NWPU-RESISC45 scene classification as an mmcls dataset."""
import numpy as np
from mmcls.datasets import DATASETS, CustomDataset

from .meta import RESISC45_CLASSES


@DATASETS.register_module()
class RESISC45Dataset(CustomDataset):
    """NWPU-RESISC45 as prepared by ``tools/dataset_converters/resisc45.py``.

    Use ``data_prefix=<prepared>/<split>`` and
    ``ann_file=<prepared>/meta/<split>.txt`` (lines ``<class>/<file> <label>``);
    label ``i`` is ``RESISC45_CLASSES[i]``. ``evaluate`` gives
    ``accuracy_top-1`` / ``accuracy_top-5`` in percent.
    """

    CLASSES = RESISC45_CLASSES

    def load_annotations(self):
        data_infos = super().load_annotations()
        labels = np.array([int(info['gt_label']) for info in data_infos], dtype=np.int64)
        bad = (labels < 0) | (labels >= len(self.CLASSES))
        if bad.any():
            raise ValueError(f'{self.ann_file}: label {int(labels[bad][0])} is outside '
                             f'0..{len(self.CLASSES) - 1}')
        return data_infos
