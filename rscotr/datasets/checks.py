"""Checks of every sample at loading time: bad files fail clearly, naming the file.

The converters check the data once, when they prepare it; files can still be
changed, truncated or removed afterwards. :class:`SampleCheckMixin` (used by
:class:`~rscotr.datasets.RESISC45Dataset`, :class:`~rscotr.datasets.DIORDataset`
and :class:`~rscotr.datasets.PotsdamIndexDataset`) checks each sample as it
is loaded and raises :class:`DataError` naming the file and the problem:

- a missing image or label file, or one that cannot be decoded;
- a truncated PNG or JPEG (no end marker: decoders would fill the rest in
  silently);
- an image that does not have ``bands`` bands of 8 bits (grayscale, 4-band,
  16-bit): the loading transforms read images ``unchanged`` (rather than
  converting them to 3-band colour silently), so this can be checked;
- detection boxes with zero or negative width/height, or outside the image
  (mmdet would drop or keep them silently), and images whose size differs
  from the annotation's;
- label maps with values that are neither a class index nor the ignore
  index, or whose size differs from the image's.

With ``on_bad_sample='skip'`` a bad sample is replaced by the next good one
(index + 1, cyclically), a warning names it, and ``bad_samples`` counts the
skips of this process (of this loader worker, with workers).
"""
import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..utils.io import PathLike, truncated_image_problem

__all__ = ['DataError', 'SampleCheckMixin', 'check_file_complete', 'check_label_map']

ON_BAD_SAMPLE = ('error', 'skip')


class DataError(ValueError):
    """A sample that cannot be used for training or evaluation.

    Args:
        path: The file at fault.
        problem: What is wrong with it. (None: ``path`` is the whole message,
            as when mmcv's builder re-raises the error with its class name.)
    """

    def __init__(self, path: PathLike, problem: Optional[str] = None) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(self.path if problem is None else f'{self.path}: {problem}')


def check_file_complete(path: str) -> None:
    """Raise :class:`DataError` when ``path`` is missing, empty, or a truncated PNG/JPEG
    (:func:`~rscotr.utils.io.truncated_image_problem`)."""
    if not osp.isfile(path):
        raise DataError(path, 'file not found (listed in the annotations)')
    if osp.getsize(path) == 0:
        raise DataError(path, 'empty file')
    problem = truncated_image_problem(path)
    if problem:
        raise DataError(path, problem)


def _image_path(results: Dict) -> Optional[str]:
    info = results.get('img_info') or {}
    name = info.get('filename') or info.get('file_name')
    if name is None:
        return results.get('filename')
    prefix = results.get('img_prefix')
    return osp.join(prefix, name) if prefix else name


def _seg_path(results: Dict) -> Optional[str]:
    seg_map = (results.get('ann_info') or {}).get('seg_map')
    if seg_map is None:
        return None
    prefix = results.get('seg_prefix')
    return osp.join(prefix, seg_map) if prefix else seg_map


class _CheckedPipeline:
    """Run the loading transforms, check their output, run the other transforms."""

    def __init__(self, pipeline, dataset: 'SampleCheckMixin'):
        transforms = list(pipeline.transforms)
        n_load = 0
        while n_load < len(transforms) and type(transforms[n_load]).__name__.startswith('Load'):
            n_load += 1
        self.pipeline = pipeline
        self.load = transforms[:n_load]
        self.rest = transforms[n_load:]
        self.dataset = dataset
        if dataset.bands is not None:
            for t in self.load:
                if getattr(t, 'color_type', None) == 'color':
                    t.color_type = 'unchanged'  # see the band check

    @property
    def transforms(self) -> List:
        return self.pipeline.transforms

    def __call__(self, results: Dict) -> Optional[Dict]:
        seg_path = _seg_path(results) if self.dataset.has_label_maps else None
        paths = [p for p in (_image_path(results), seg_path) if p]
        for path in paths:
            check_file_complete(path)
        for t in self.load:
            try:
                results = t(results)
            except DataError:
                raise
            except Exception as err:  # cv2/PIL/numpy errors deep inside the loaders
                raise DataError(paths[0] if paths else '?',
                                f'cannot be loaded by {type(t).__name__} '
                                f'({type(err).__name__}: {err})') from err
            if results is None:
                return None
        self.dataset.check_sample(results)
        for t in self.rest:
            results = t(results)
            if results is None:
                return None
        return results

    def __repr__(self) -> str:
        return f'Checked{self.pipeline!r}'


class SampleCheckMixin:
    """Check every loaded sample (see the module docstring); mix in before the dataset.

    Args:
        on_bad_sample: 'error' (raise :class:`DataError`) or 'skip' (warn and
            use the next good sample).
        bands: Bands every image must have (None: no band check).
    """

    #: The samples have label map files (``ann_info['seg_map']`` under ``seg_prefix``)
    has_label_maps = False

    def _init_checks(self, on_bad_sample: str = 'error', bands: Optional[int] = 3) -> None:
        if on_bad_sample not in ON_BAD_SAMPLE:
            raise ValueError(f'on_bad_sample must be one of {ON_BAD_SAMPLE}, '
                             f'got {on_bad_sample!r}')
        self.on_bad_sample = on_bad_sample
        self.bands = bands
        self.bad_samples = 0
        self.pipeline = _CheckedPipeline(self.pipeline, self)

    # -- the checks
    def check_sample(self, results: Dict) -> None:
        path = results.get('filename') or _image_path(results) or '?'
        img = results.get('img')
        if img is None:
            raise DataError(path, 'could not be decoded as an image')
        if self.bands is not None:
            bands = 1 if img.ndim == 2 else img.shape[2]
            if bands != self.bands:
                kind = 'grayscale' if bands == 1 else f'{bands}-band'
                raise DataError(path, f'{kind} image where {self.bands} bands are expected '
                                '(convert it, or pick bands with the converters)')
            if img.dtype != np.uint8:
                raise DataError(path, f'{img.dtype} image where 8-bit bands are expected')
        self.check_annotations(results, path)

    def check_annotations(self, results: Dict, path: str) -> None:
        """Task-specific checks of the loaded annotations (override)."""

    # -- skipping
    def __getitem__(self, idx: int):
        for _ in range(len(self)):
            try:
                return super().__getitem__(idx)
            except DataError as err:
                if self.on_bad_sample == 'error':
                    raise
                self.bad_samples += 1
                warnings.warn(f'skipping bad sample {idx} of {type(self).__name__} '
                              f'({self.bad_samples} so far): {err}')
                idx = (idx + 1) % len(self)
        raise DataError(getattr(self, 'ann_file', None) or '?', 'every sample is bad')


def check_label_map(seg: np.ndarray, num_classes: int, ignore_index: int, path: str,
                    img_shape: Sequence[int]) -> None:
    """Raise :class:`DataError` for a label map with unknown values or the wrong size."""
    if tuple(seg.shape[:2]) != tuple(img_shape[:2]):
        raise DataError(path, f'label map of size {tuple(seg.shape[:2])} for an image of size '
                        f'{tuple(img_shape[:2])}')
    values = np.unique(seg)
    bad = values[(values >= num_classes) & (values != ignore_index)]
    bad = bad[bad >= 0] if bad.size else bad
    bad = np.concatenate([values[values < 0], bad])
    if bad.size:
        raise DataError(path, f'label values {bad.tolist()[:10]} are neither a class index '
                        f'(0..{num_classes - 1}) nor the ignore index {ignore_index}')
