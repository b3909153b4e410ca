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

Before a run, :func:`check_dataset_files` finds missing, unreadable and empty
folders and annotation files of a dataset config without building it (used
by :func:`rscotr.apis.checks.check_config` and ``tools/test.py``). During a
run, :func:`data_error_line` turns a :class:`DataError` (also one raised in a
loader worker, which torch re-raises with the worker's traceback as its
message) into the one line the tools print.
"""
import os
import os.path as osp
import re
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..utils.io import PathLike, truncated_image_problem
from .tasks import unwrap_dataset_cfg

__all__ = ['DataError', 'SampleCheckMixin', 'check_file_complete', 'check_label_map',
           'check_dataset_files', 'data_error_line']

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


# ---------------------------------------------------------------------- before a run
#: Dataset arguments that name a folder / a file, by library convention
#: (mmcls ``data_prefix``; mmdet ``img_prefix``, ``seg_prefix``; mmseg ``img_dir``,
#: ``ann_dir``; ``ann_file`` (mmcls, mmdet), ``split`` (mmseg), ``proposal_file``).
_FOLDER_KEYS = ('data_prefix', 'img_prefix', 'seg_prefix', 'img_dir', 'ann_dir')
_FILE_KEYS = ('ann_file', 'split', 'proposal_file', 'classes')
#: Tasks whose library joins relative paths to ``data_root`` (mmdet, mmseg).
_DATA_ROOT_TASKS = ('det', 'seg')
_HINT = 'prepare the data (README: Preparing the real datasets) or fix the path'


def _folder_problem(path: str) -> Optional[str]:
    if not osp.exists(path):
        return 'folder not found'
    if not osp.isdir(path):
        return 'is a file where a folder is expected'
    try:
        with os.scandir(path) as entries:
            if next(entries, None) is None:
                return 'empty folder'
    except OSError as err:
        return f'cannot be read ({err.strerror or err})'
    return None


def _file_problem(path: str) -> Optional[str]:
    if not osp.exists(path):
        return 'file not found'
    if osp.isdir(path):
        return 'is a folder where a file is expected'
    try:
        with open(path, 'rb') as f:
            head = f.read(4096)
    except OSError as err:
        return f'cannot be read ({err.strerror or err})'
    text = head.lstrip()
    if not text:
        return 'empty file' if not head else 'holds only white space'
    if path.endswith('.json') and text[:1] not in (b'{', b'['):
        return 'is not a JSON file (it does not start with { or [)'
    return None


def check_dataset_files(ds_cfg: Dict, task: str, where: str) -> List[str]:
    """Problems of the files and folders a dataset config names (nothing is built).

    Every folder (``data_prefix``, ``img_prefix``, ``img_dir``, ``ann_dir``, ...)
    must exist and hold something; every file (``ann_file``, ``split``, a
    ``classes`` file, ...) must exist, be readable and not be empty (a JSON
    annotation file must start like JSON). Paths are resolved as the task's
    library resolves them (``data_root`` joined to relative paths for mmdet
    and mmseg). Wrappers (``RepeatDataset``, ``ConcatDataset``, ...) are
    looked through.

    Args:
        ds_cfg: The dataset config (upstream convention).
        task: 'cls', 'det' or 'seg'.
        where: The config key of ``ds_cfg``, for messages
            (``'data.train.resisc.dataset'``).

    Returns:
        list: One line per problem: key, path, what is wrong, what to do.
    """
    problems: List[str] = []
    for cfg, key in unwrap_dataset_cfg(dict(ds_cfg), where):
        root = cfg.get('data_root') if task in _DATA_ROOT_TASKS else None
        if root is not None:
            problem = _folder_problem(str(root))
            if problem:
                problems.append(f'{key}.data_root: {root}: {problem}; {_HINT}')
                continue

        def resolve(value) -> str:
            value = str(value)
            return osp.join(root, value) if root is not None and not osp.isabs(value) else value

        for name in _FOLDER_KEYS:
            value = cfg.get(name)
            if isinstance(value, str) and value:
                path = resolve(value)
                problem = _folder_problem(path)
                if problem:
                    problems.append(f'{key}.{name}: {path}: {problem}; {_HINT}')
        for name in _FILE_KEYS:
            value = cfg.get(name)
            if isinstance(value, str) and value:
                path = resolve(value) if name != 'classes' else value
                problem = _file_problem(path)
                if problem:
                    problems.append(f'{key}.{name}: {path}: {problem}; {_HINT}')
    return problems


# ---------------------------------------------------------------------- during a run
_WORKER_ERROR = re.compile(r'Caught (\w+) in DataLoader worker process \d+')
_EXCEPTION_PREFIX = re.compile(r'^[A-Za-z_][\w.]*(Error|Exception|Interrupt)?: ')


def data_error_line(err: BaseException) -> Optional[str]:
    """One line for an error of the data: a :class:`DataError` raised while loading a
    sample, in this process or in a loader worker, or any error raised inside a
    loader worker (torch re-raises it with the worker's whole traceback as its
    message); None for any other error.

    The line is the original error's message (for a :class:`DataError`:
    ``'<file>: <problem>'``), with its type when it is not a :class:`DataError`.
    """
    text = str(err)
    worker = _WORKER_ERROR.search(text)
    if worker is None:
        if isinstance(err, DataError):
            return text.strip().splitlines()[0] if text.strip() else type(err).__name__
        return None
    lines = [line for line in text.strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else worker.group(0)
    kind = worker.group(1)
    message = _EXCEPTION_PREFIX.sub('', last, count=1)
    if kind == 'DataError':
        return message
    return f'{kind} in a data loader worker: {message}'
