"""NWPU-RESISC45 scene classification as an mmcls dataset."""
from typing import Optional

import numpy as np
from mmcls.datasets import DATASETS, CustomDataset

from .checks import DataError, SampleCheckMixin
from .meta import RESISC45_CLASSES


@DATASETS.register_module()
class RESISC45Dataset(SampleCheckMixin, CustomDataset):
    """NWPU-RESISC45 as prepared by ``tools/dataset_converters/resisc45.py``.

    Use ``data_prefix=<prepared>/<split>`` and
    ``ann_file=<prepared>/meta/<split>.txt`` (lines ``<class>/<file> <label>``);
    label ``i`` is ``RESISC45_CLASSES[i]``. ``evaluate`` gives
    ``accuracy_top-1`` / ``accuracy_top-5`` in percent.

    Every sample is checked when it is loaded (missing, truncated or corrupt
    image, not 3 bands of 8 bits: :class:`~rscotr.datasets.checks.DataError`).

    Args:
        on_bad_sample: 'error' or 'skip' (see :mod:`rscotr.datasets.checks`).
        bands: Bands every image must have (None: not checked).
        **kwargs: :class:`mmcls.datasets.CustomDataset` arguments.
    """

    CLASSES = RESISC45_CLASSES

    def __init__(self, on_bad_sample: str = 'error', bands: Optional[int] = 3, **kwargs):
        super().__init__(**kwargs)
        self._init_checks(on_bad_sample, bands)

    def load_annotations(self):
        data_infos = super().load_annotations()
        labels = np.array([int(info['gt_label']) for info in data_infos], dtype=np.int64)
        bad = (labels < 0) | (labels >= len(self.CLASSES))
        if bad.any():
            raise DataError(self.ann_file, f'label {int(labels[bad][0])} is outside '
                            f'0..{len(self.CLASSES) - 1}')
        return data_infos
