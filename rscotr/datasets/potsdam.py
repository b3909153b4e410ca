"""ISPRS Potsdam semantic segmentation as an mmseg dataset, under two protocols."""
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from mmcv.utils import print_log
from mmseg.datasets import DATASETS, CustomDataset

from .checks import SampleCheckMixin, check_label_map
from .meta import POTSDAM_CLASSES, POTSDAM_IGNORE_INDEX, POTSDAM_PALETTE

__all__ = ['PotsdamIndexDataset', 'POTSDAM_PROTOCOLS', 'POTSDAM_CLUTTER_INDEX']

#: Prepared label value of clutter / background.
POTSDAM_CLUTTER_INDEX = 5
#: ``protocol`` option -> the tag written to the metrics (``potsdam.protocol``).
POTSDAM_PROTOCOLS: Dict[str, str] = OrderedDict([('release', 'release-6class'),
                                                 ('5class', '5class')])


@DATASETS.register_module()
class PotsdamIndexDataset(SampleCheckMixin, CustomDataset):
    """Potsdam patches with index labels (``tools/dataset_converters/potsdam.py``).

    ``img_dir=<prepared>/img_dir/<split>``, ``ann_dir=<prepared>/ann_dir/<split>``
    (PNGs with the same stems). Prepared labels are 0..4 for impervious
    surface, building, low vegetation, tree and car, 5 for clutter and 255 for
    boundaries (``--no-boundary``).

    Two protocols (``protocol``), named in the metrics as ``protocol``
    (``potsdam.protocol`` in the eval / test json) so that figures of the two
    are never mixed up:

    - ``'release'`` (the released RSCoTr, tagged ``'release-6class'``): 6
      classes, clutter (5) **is trained** as a class; the labels reach the
      pipeline unchanged, so the loss ignores only 255 (the training configs
      pad crops with label 5). Evaluation is mmseg's over the 6 classes with
      ``ignore_index=5``: clutter pixels are left out, a clutter prediction on
      another class's pixel counts as an error. As mmseg 0.30 computes it,
      clutter's IoU is then 0 (NaN if clutter is never predicted), its
      F-score, precision, recall and accuracy are NaN, so ``mFscore`` is the
      mean over the other 5 classes while ``mIoU`` averages 6 values when
      clutter was predicted anywhere (5 otherwise); ``aAcc`` counts the
      non-clutter pixels. Boundary pixels (255, only with ``--no-boundary``
      labels) are not masked in this setting: they count in no class's
      ground truth, but a prediction there adds to that class's predicted
      area (lowering its IoU and precision).
    - ``'5class'`` (tagged ``'5class'``; the common literature protocol and
      this class's default): 5 classes; the labels of ``ignore_labels``
      (clutter, 5) are mapped to ``ignore_index`` (255) through mmseg's
      ``label_map`` mechanism, which ``LoadAnnotations`` applies both in the
      training pipeline and when :meth:`evaluate` / :meth:`pre_eval` read the
      ground truth; clutter counts in neither loss nor metrics.

    ``CLASSES`` / ``PALETTE`` of an instance follow the protocol (the class
    attributes are the 5-class ones); :meth:`classes_of_config` tells them
    from a config without building the dataset. (mmseg's own
    ``PotsdamDataset`` uses another label encoding and is not used here.)

    Every sample is checked when it is loaded (see :mod:`rscotr.datasets.checks`):
    besides the image checks, a label map with a value that is neither a
    class index nor 255 (``ignore_index`` under ``'5class'``, after
    ``ignore_labels`` are mapped), or of another
    size than its image, raises :class:`~rscotr.datasets.checks.DataError`.

    Args:
        protocol: ``'release'`` or ``'5class'`` (see above).
        ignore_labels: Prepared label values mapped to ``ignore_index``
            (None: ``(5, )`` under ``'5class'``, none under ``'release'``,
            where ignoring clutter is an error).
        on_bad_sample: 'error' or 'skip'.
        bands: Bands every image must have (None: not checked).
        **kwargs: :class:`mmseg.datasets.CustomDataset` arguments
            (``img_suffix``/``seg_map_suffix`` default to ``'.png'``;
            ``classes`` / ``palette`` follow the protocol and cannot be given;
            ``ignore_index`` is 5 under ``'release'``, 255 by default under
            ``'5class'``).
    """

    CLASSES = POTSDAM_CLASSES[:5]
    PALETTE = [list(c) for c in POTSDAM_PALETTE[:5]]
    has_label_maps = True

    def __init__(self, protocol: str = '5class', ignore_labels: Optional[Sequence[int]] = None,
                 on_bad_sample: str = 'error', bands: Optional[int] = 3, **kwargs):
        classes, palette = self.protocol_classes(protocol)
        for key in ('classes', 'palette'):
            if kwargs.get(key) is not None:
                raise ValueError(f'PotsdamIndexDataset: {key} follow the protocol '
                                 f'({protocol!r}: {len(classes)} classes); remove {key}=')
        if kwargs.get('reduce_zero_label'):
            raise ValueError('Potsdam index labels use 0 for a class: '
                             'reduce_zero_label must be False')
        if protocol == 'release':
            ignore_labels = tuple(ignore_labels or ())
            if POTSDAM_CLUTTER_INDEX in ignore_labels:
                raise ValueError(
                    f"PotsdamIndexDataset(protocol='release'): clutter "
                    f'({POTSDAM_CLUTTER_INDEX}) is a trained class, so ignore_labels='
                    f"{list(ignore_labels)} cannot hold it; use protocol='5class' to "
                    'ignore clutter')
            if kwargs.get('ignore_index', POTSDAM_CLUTTER_INDEX) != POTSDAM_CLUTTER_INDEX:
                raise ValueError(
                    "PotsdamIndexDataset(protocol='release') evaluates with ignore_index="
                    f"{POTSDAM_CLUTTER_INDEX} (clutter); got ignore_index={kwargs['ignore_index']}")
            kwargs['ignore_index'] = POTSDAM_CLUTTER_INDEX
        else:
            ignore_labels = (POTSDAM_CLUTTER_INDEX, ) if ignore_labels is None else ignore_labels
            kwargs.setdefault('ignore_index', POTSDAM_IGNORE_INDEX)
        kwargs.setdefault('img_suffix', '.png')
        kwargs.setdefault('seg_map_suffix', '.png')
        super().__init__(**kwargs)
        self.protocol = protocol
        self.CLASSES, self.PALETTE = classes, palette
        self.ignore_labels = tuple(int(v) for v in ignore_labels)
        self._init_checks(on_bad_sample, bands)

    @classmethod
    def protocol_classes(cls, protocol: str) -> Tuple[Tuple[str, ...], List[List[int]]]:
        """Class names and palette (RGB) of a protocol.

        Raises:
            ValueError: An unknown protocol.
        """
        if protocol not in POTSDAM_PROTOCOLS:
            raise ValueError(f'PotsdamIndexDataset: unknown protocol {protocol!r}; use one of '
                             f'{list(POTSDAM_PROTOCOLS)}')
        num = len(POTSDAM_CLASSES) if protocol == 'release' else POTSDAM_CLUTTER_INDEX
        return tuple(POTSDAM_CLASSES[:num]), [list(c) for c in POTSDAM_PALETTE[:num]]

    @classmethod
    def classes_of_config(cls, cfg: Mapping) -> Tuple[Tuple[str, ...], List[List[int]]]:
        """Class names and palette a dataset config will have, without building it.

        Args:
            cfg: The dataset config (``dict(type='PotsdamIndexDataset', ...)``).
        """
        return cls.protocol_classes(cfg.get('protocol', '5class'))

    @property
    def protocol_tag(self) -> str:
        """The protocol as it is written to the metrics: 'release-6class' or '5class'."""
        return POTSDAM_PROTOCOLS[self.protocol]

    def check_annotations(self, results, path):
        seg = results.get('gt_semantic_seg')
        if seg is not None:
            seg_path = osp.join(results.get('seg_prefix') or '', results['ann_info']['seg_map'])
            # the value the loss ignores: 255 (release), the mapped ignore index (5class)
            ignored = POTSDAM_IGNORE_INDEX if self.protocol == 'release' else self.ignore_index
            check_label_map(seg, len(self.CLASSES), ignored, seg_path, results['img'].shape)

    def pre_pipeline(self, results):
        super().pre_pipeline(results)
        label_map = dict(results.get('label_map') or {})
        label_map.update({label: self.ignore_index for label in self.ignore_labels})
        results['label_map'] = label_map

    def evaluate(self, results, metric='mIoU', logger=None, gt_seg_maps=None,
                 **kwargs) -> 'OrderedDict[str, object]':
        """mmseg's evaluation under this dataset's protocol (see the class doc).

        Returns:
            OrderedDict: ``protocol`` (``'release-6class'`` or ``'5class'``)
            first, then mmseg's metrics (``aAcc``, ``mIoU``, ``mFscore``, ...,
            per class ``IoU.<class>`` ...; 0..1).
        """
        print_log(f'Potsdam protocol: {self.protocol_tag} ({len(self.CLASSES)} classes, '
                  f'ignore index {self.ignore_index})', logger=logger)
        metrics = super().evaluate(results, metric=metric, logger=logger,
                                   gt_seg_maps=gt_seg_maps, **kwargs)
        out = OrderedDict(protocol=self.protocol_tag)
        out.update(metrics)
        return out
