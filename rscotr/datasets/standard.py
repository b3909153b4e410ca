"""Datasets in the standard formats: class folders, COCO json, image/mask folders.

A user's own dataset needs no converter when it is in one of these layouts
(README: Co-training your own datasets):

- :class:`ClassFolderDataset` (mmcls, scene classification): a folder of
  class sub-folders of images, optionally with split list files;
- :class:`CocoJsonDataset` (mmdet, horizontal-box detection): a COCO json
  and a folder of images;
- :class:`MaskFolderDataset` (mmseg, semantic segmentation): a folder of
  images and a folder of index masks with the same stems, and a class list.

Each is the upstream custom dataset (mmcls' and mmseg's ``CustomDataset``,
mmdet's ``CocoDataset``) with its classes taken from the config or the data,
the layout checked when the dataset is built, and every sample checked when
it is loaded (:mod:`rscotr.datasets.checks`). Whatever is wrong raises
:class:`~rscotr.datasets.checks.DataError` naming the file or folder and the
problem. Each type's ``classes_of_config(cfg)`` gives the class names (and
palette) of a config without building it (see
:func:`rscotr.datasets.tasks.dataset_classes`).
"""
import json
import os.path as osp
from typing import List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from mmcls.datasets import DATASETS as CLS_DATASETS
from mmcls.datasets import CustomDataset as ClsCustomDataset
from mmcls.datasets.custom import find_folders, get_samples
from mmcv import FileClient
from mmdet.datasets import DATASETS as DET_DATASETS
from mmdet.datasets import CocoDataset
from mmseg.datasets import DATASETS as SEG_DATASETS
from mmseg.datasets import CustomDataset as SegCustomDataset

from .checks import DataError, SampleCheckMixin, check_label_map
from .dior import CocoBoxChecksMixin

__all__ = ['ClassFolderDataset', 'CocoJsonDataset', 'MaskFolderDataset', 'read_classes',
           'read_coco_json', 'coco_category_names', 'default_palette']

ClassesArg = Union[None, str, Sequence[str]]


def read_classes(classes: ClassesArg, who: str) -> Optional[Tuple[str, ...]]:
    """Class names from a config's ``classes``: a list, or a file of one name per line.

    Args:
        classes: The option (None: none given).
        who: The dataset type, for messages.

    Returns:
        tuple or None: The names (None when ``classes`` is None).

    Raises:
        DataError: A classes file that is missing or empty (naming it).
        ValueError: No names, a name twice, or another type.
    """
    if classes is None:
        return None
    source = 'classes'
    if isinstance(classes, str):
        if not osp.isfile(classes):
            raise DataError(classes, f'classes file of {who} not found')
        with open(classes, encoding='utf-8') as f:
            names = tuple(line.strip() for line in f if line.strip())
        if not names:
            raise DataError(classes, f'classes file of {who} holds no class name')
        source = classes
    elif isinstance(classes, (list, tuple)) and all(isinstance(c, str) for c in classes):
        names = tuple(classes)
    else:
        raise ValueError(f'{who}: classes must be a list of names or a file of one name '
                         f'per line, got {classes!r}')
    if not names:
        raise ValueError(f'{who}: classes is empty')
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:
        raise ValueError(f'{who}: {source} names {twice} more than once')
    return names


def _check_folder(path: str, what: str) -> None:
    if not osp.exists(path):
        raise DataError(path, f'{what} not found')
    if not osp.isdir(path):
        raise DataError(path, f'{what} is a file, not a folder')


def _joined(cfg: Mapping, key: str) -> Optional[str]:
    """``cfg[key]`` joined to ``cfg['data_root']`` as mmdet and mmseg join it."""
    value, root = cfg.get(key), cfg.get('data_root')
    if value is None or root is None or osp.isabs(value):
        return value
    return osp.join(root, value)


# ------------------------------------------------------------------ classification
@CLS_DATASETS.register_module()
class ClassFolderDataset(SampleCheckMixin, ClsCustomDataset):
    """Scene classification from a folder of class sub-folders (mmcls).

    Layout::

        <data_prefix>/<class>/<image>     e.g. beach/beach_001.jpg
        <split list>                      optional: lines <class>/<image>

    The label of an image is the index of its folder's name in the classes.
    Without ``ann_file`` every image under ``data_prefix`` is used; with it,
    the images it lists (paths relative to ``data_prefix``, one a line), so
    that one folder can hold the train, val and test splits.

    Refused when the dataset is built (:class:`~rscotr.datasets.checks.DataError`
    naming the folder or file): a missing ``data_prefix``, a class folder
    without images, a folder that is not one of the classes, a class without
    a folder, a split list that is empty, names a folder that is not a class
    or a file that does not exist. Every sample is checked when it is loaded
    (unreadable, truncated, not 3 bands of 8 bits).

    ``evaluate`` is mmcls' (``accuracy_top-1`` ... in percent).

    Args:
        data_prefix: The folder of class folders.
        classes: Class names, or a file of one name per line (None: the
            sorted names of the sub-folders).
        ann_file: Split list (None: every image).
        on_bad_sample: 'error' or 'skip' (see :mod:`rscotr.datasets.checks`).
        bands: Bands every image must have (None: not checked).
        **kwargs: :class:`mmcls.datasets.CustomDataset` arguments
            (``pipeline``, ``extensions``, ``test_mode``, ...).
    """

    def __init__(self, data_prefix: str, classes: ClassesArg = None,
                 ann_file: Optional[str] = None, on_bad_sample: str = 'error',
                 bands: Optional[int] = 3, **kwargs):
        classes = read_classes(classes, type(self).__name__)
        _check_folder(data_prefix, 'class folder root (data_prefix)')
        if ann_file is not None and not osp.isfile(ann_file):
            raise DataError(ann_file, 'split list (ann_file) not found')
        super().__init__(data_prefix=data_prefix, classes=classes, ann_file=ann_file, **kwargs)
        self._init_checks(on_bad_sample, bands)

    @classmethod
    def classes_of_config(cls, cfg: Mapping) -> Tuple[Tuple[str, ...], None]:
        """Class names of a config without building it: its ``classes``, else the
        sorted sub-folders of its ``data_prefix``; no palette."""
        classes = read_classes(cfg.get('classes'), cls.__name__)
        if classes is not None:
            return classes, None
        prefix = cfg['data_prefix']
        _check_folder(prefix, 'class folder root (data_prefix)')
        folders, _ = find_folders(prefix, FileClient.infer_client(None, prefix))
        return tuple(folders), None

    def load_annotations(self) -> List[dict]:
        file_client = FileClient.infer_client(self.file_client_args, self.data_prefix)
        folders, _ = find_folders(self.data_prefix, file_client)
        if not folders:
            raise DataError(self.data_prefix, 'holds no class folder')
        if self.CLASSES is None:
            self.CLASSES = tuple(folders)
        unknown = [f for f in folders if f not in self.CLASSES]
        if unknown:
            raise DataError(osp.join(self.data_prefix, unknown[0]),
                            f'class folder that is not one of the {len(self.CLASSES)} classes '
                            f'{list(self.CLASSES)} (add it to classes or move it away)')
        missing = [c for c in self.CLASSES if c not in folders]
        if missing:
            raise DataError(self.data_prefix, f'no folder for the classes {missing}')
        folder_to_idx = {name: self.CLASSES.index(name) for name in folders}
        samples, empty = get_samples(self.data_prefix, folder_to_idx, self.is_valid_file,
                                     file_client)
        if empty:
            raise DataError(osp.join(self.data_prefix, sorted(empty)[0]),
                            f'class folder holds no image ({", ".join(sorted(self.extensions))})')
        if self.ann_file is not None:
            samples = self._listed_samples(folder_to_idx)
        return [dict(img_prefix=self.data_prefix, img_info=dict(filename=filename),
                     gt_label=np.array(label, dtype=np.int64)) for filename, label in samples]

    def _listed_samples(self, folder_to_idx) -> List[Tuple[str, int]]:
        samples = []
        with open(self.ann_file, encoding='utf-8') as f:
            lines = [(n, line.strip()) for n, line in enumerate(f, 1) if line.strip()]
        for n, path in lines:
            folder = path.replace('\\', '/').split('/', 1)[0]
            where = f'line {n} ({path!r})'
            if '/' not in path.replace('\\', '/'):
                raise DataError(self.ann_file, f'{where} is not <class>/<file>')
            if folder not in folder_to_idx:
                raise DataError(self.ann_file, f'{where}: {folder!r} is not one of the classes '
                                f'{list(self.CLASSES)}')
            if not osp.isfile(osp.join(self.data_prefix, path)):
                raise DataError(osp.join(self.data_prefix, path),
                                f'file not found (listed in {self.ann_file}, line {n})')
            samples.append((path, folder_to_idx[folder]))
        if not samples:
            raise DataError(self.ann_file, 'empty split list')
        return samples


# ------------------------------------------------------------------ detection
def read_coco_json(path: str) -> dict:
    """The contents of a COCO detection json, checked.

    Raises:
        DataError: Naming ``path``: missing, empty, not JSON, no ``images`` /
            ``categories`` lists, category ids or names given twice, an
            annotation whose ``category_id`` is not a category or whose
            ``image_id`` is not an image.
    """
    if not osp.isfile(path):
        raise DataError(path, 'COCO json (ann_file) not found')
    with open(path, encoding='utf-8') as f:
        text = f.read()
    if not text.strip():
        raise DataError(path, 'empty file where a COCO json is expected')
    try:
        coco = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(path, f'not valid JSON ({err.msg} at line {err.lineno}, column '
                        f'{err.colno})') from err
    for key in ('images', 'categories'):
        if not isinstance(coco, dict) or not isinstance(coco.get(key), list):
            raise DataError(path, f'not a COCO detection json: no {key!r} list')
    cats = coco['categories']
    if not cats:
        raise DataError(path, 'no categories')
    ids = [c.get('id') for c in cats]
    names = [c.get('name') for c in cats]
    for what, values in (('ids', ids), ('names', names)):
        twice = sorted({str(v) for v in values if values.count(v) > 1})
        if twice:
            raise DataError(path, f'category {what} {twice} are given more than once')
    img_ids = {img.get('id') for img in coco['images']}
    for ann in coco.get('annotations') or ():
        if ann.get('category_id') not in ids:
            raise DataError(path, f'annotation id {ann.get("id")} has category_id '
                            f'{ann.get("category_id")}, which is not among the category ids '
                            f'{sorted(ids)}')
        if ann.get('image_id') not in img_ids:
            raise DataError(path, f'annotation id {ann.get("id")} has image_id '
                            f'{ann.get("image_id")}, which is not among the images')
    return coco


def coco_category_names(coco: dict) -> Tuple[str, ...]:
    """The category names of a COCO json's contents, in id order."""
    return tuple(c['name'] for c in sorted(coco['categories'], key=lambda c: c['id']))


@DET_DATASETS.register_module()
class CocoJsonDataset(CocoBoxChecksMixin, SampleCheckMixin, CocoDataset):
    """Horizontal-box detection from a COCO json (mmdet's ``CocoDataset``).

    Layout::

        <img_prefix>/<file_name of each json image>
        <ann_file>          COCO json: images, annotations (bbox x, y, w, h), categories

    The classes are the config's, else the json's categories in id order;
    label ``i`` is ``classes[i]`` whatever the order of the json's categories
    (mmdet's ``CocoDataset`` numbers the categories in json order). Images
    without annotations are kept for evaluation (``test_mode=True``) and
    dropped from training unless ``filter_empty_gt=False`` (mmdet's rule).

    Refused (:class:`~rscotr.datasets.checks.DataError` naming the file): a
    missing, empty or invalid json (:func:`read_coco_json`), an annotation
    whose ``category_id`` is not a category, a category that is not one of
    the classes or a class that is not a category; when a sample is loaded,
    a box of zero area or reaching outside its image, an image whose size
    differs from the json's, and the image checks of
    :mod:`rscotr.datasets.checks`.

    ``evaluate`` is mmdet's COCO evaluation (``metric='bbox'``: ``bbox_mAP``,
    ``bbox_mAP_50``, ... in 0..1).

    Args:
        on_bad_sample: 'error' or 'skip'.
        bands: Bands every image must have (None: not checked).
        **kwargs: :class:`mmdet.datasets.CocoDataset` arguments (``ann_file``,
            ``img_prefix``, ``pipeline``, ``classes`` (a list or a file),
            ``data_root``, ``test_mode``, ``filter_empty_gt``, ...).
    """

    CLASSES = None
    PALETTE = None

    def __init__(self, *args, classes: ClassesArg = None, on_bad_sample: str = 'error',
                 bands: Optional[int] = 3, **kwargs):
        super().__init__(*args, classes=read_classes(classes, type(self).__name__), **kwargs)
        self._init_checks(on_bad_sample, bands)

    @classmethod
    def classes_of_config(cls, cfg: Mapping) -> Tuple[Tuple[str, ...], None]:
        """Class names of a config without building it: its ``classes``, else the
        categories of its json in id order; no palette."""
        classes = read_classes(cfg.get('classes'), cls.__name__)
        if classes is not None:
            return classes, None
        return coco_category_names(read_coco_json(_joined(cfg, 'ann_file'))), None

    def load_annotations(self, ann_file: str) -> List[dict]:
        coco = read_coco_json(ann_file)
        if self.CLASSES is None:
            self.CLASSES = coco_category_names(coco)
        name_to_id = {c['name']: c['id'] for c in coco['categories']}
        for cat in coco['categories']:
            if cat['name'] not in self.CLASSES:
                raise DataError(ann_file, f'category {cat["name"]!r} (id {cat["id"]}) is not one '
                                f'of the classes {list(self.CLASSES)}')
        missing = [c for c in self.CLASSES if c not in name_to_id]
        if missing:
            raise DataError(ann_file, f'classes {missing} are not categories of the json '
                            f'(categories: {list(name_to_id)})')
        self._class_of_cat = {cat_id: self.CLASSES.index(name)
                              for name, cat_id in name_to_id.items()}
        return super().load_annotations(ann_file)

    @property
    def cat_ids(self) -> List[int]:
        """The category id of each class, in the order of ``CLASSES``."""
        return self._cat_ids

    @cat_ids.setter
    def cat_ids(self, ids: Sequence[int]) -> None:
        # mmdet sets the ids of CLASSES in json order (in load_annotations, which
        # numbers the labels after them, and again in evaluate): put them in class order
        self._cat_ids = sorted(ids, key=self._class_of_cat.__getitem__)


# ------------------------------------------------------------------ segmentation
def default_palette(num_classes: int) -> List[List[int]]:
    """The palette of a :class:`MaskFolderDataset` given none: fixed random
    colours (those mmseg draws for custom classes without a palette)."""
    return np.random.RandomState(42).randint(0, 255, size=(num_classes, 3)).tolist()


@SEG_DATASETS.register_module()
class MaskFolderDataset(SampleCheckMixin, SegCustomDataset):
    """Semantic segmentation from image and mask folders (mmseg's ``CustomDataset``).

    Layout::

        <img_dir>/<stem><img_suffix>        e.g. img_dir/train/tile_01.png
        <ann_dir>/<stem><seg_map_suffix>    index masks: 0..len(classes)-1, ignore_index

    (sub-folders allowed; ``data_root`` joined to relative paths; mmseg's
    ``split`` list of stems optional). The masks hold class indices; pixels
    of ``ignore_index`` count in neither loss nor metrics.

    Refused (:class:`~rscotr.datasets.checks.DataError` naming the file or
    folder): a missing folder, no images, an image without its mask, a
    classes file that is missing or empty; when a sample is loaded, mask
    values that are neither a class index nor ``ignore_index``, a mask of
    another size than its image, and the image checks of
    :mod:`rscotr.datasets.checks`.

    ``evaluate`` is mmseg's (``mIoU``, ``mFscore``, ... in 0..1).

    Args:
        img_dir: Image folder.
        ann_dir: Mask folder.
        classes: Class names, or a file of one name per line (required).
        palette: RGB colour of each class (None: :func:`default_palette`).
        ignore_index: Mask value of unlabelled pixels.
        on_bad_sample: 'error' or 'skip'.
        bands: Bands every image must have (None: not checked).
        **kwargs: :class:`mmseg.datasets.CustomDataset` arguments
            (``pipeline``, ``img_suffix`` (default '.jpg'), ``seg_map_suffix``
            (default '.png'), ``split``, ``data_root``, ``test_mode``, ...).
    """

    has_label_maps = True

    def __init__(self, img_dir: str, ann_dir: str, classes: ClassesArg = None,
                 palette: Optional[Sequence[Sequence[int]]] = None, ignore_index: int = 255,
                 on_bad_sample: str = 'error', bands: Optional[int] = 3, **kwargs):
        classes, palette = self.classes_of_config(dict(classes=classes, palette=palette))
        super().__init__(img_dir=img_dir, ann_dir=ann_dir, classes=classes, palette=palette,
                         ignore_index=ignore_index, **kwargs)
        self._init_checks(on_bad_sample, bands)

    @classmethod
    def classes_of_config(cls, cfg: Mapping) -> Tuple[Tuple[str, ...], List[List[int]]]:
        """Class names and palette of a config without building it.

        Raises:
            ValueError: No ``classes``, or a palette of another length.
        """
        classes = read_classes(cfg.get('classes'), cls.__name__)
        if classes is None:
            raise ValueError(f'{cls.__name__}: classes is required (a list of names, or a '
                             'file of one name per line; mask value i is classes[i])')
        palette = cfg.get('palette')
        if palette is None:
            return classes, default_palette(len(classes))
        palette = [list(colour) for colour in palette]
        if len(palette) != len(classes) or any(len(colour) != 3 for colour in palette):
            raise ValueError(f'{cls.__name__}: palette must give one RGB colour to each of the '
                             f'{len(classes)} classes, got {palette}')
        return classes, palette

    def load_annotations(self, img_dir, img_suffix, ann_dir, seg_map_suffix, split):
        _check_folder(img_dir, 'image folder (img_dir)')
        _check_folder(ann_dir, 'mask folder (ann_dir)')
        if split is not None and not osp.isfile(split):
            raise DataError(split, 'split list not found')
        img_infos = super().load_annotations(img_dir, img_suffix, ann_dir, seg_map_suffix, split)
        if not img_infos:
            raise DataError(img_dir, f'no image ending in {img_suffix!r}')
        for info in img_infos:
            mask = osp.join(ann_dir, info['ann']['seg_map'])
            if not osp.isfile(mask):
                raise DataError(mask, f'mask of {osp.join(img_dir, info["filename"])} not found')
        return img_infos

    def check_annotations(self, results, path):
        seg = results.get('gt_semantic_seg')
        if seg is not None:
            seg_path = osp.join(results.get('seg_prefix') or '', results['ann_info']['seg_map'])
            check_label_map(seg, len(self.CLASSES), self.ignore_index, seg_path,
                            results['img'].shape)
