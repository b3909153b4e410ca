"""Run a trained RSCoTr on single images, for any subset of its tasks.

Example::

    from rscotr.apis import init_model, inference_multitask   # or rscotr.apis.inference
    model = init_model('configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py',
                       'work_dirs/rscotr/latest.pth', device='cuda')
    result = inference_multitask(model, 'tile.tif', tasks=['cls', 'seg'])
    result['cls']['top5']              # [('dense_residential', 0.81), ...]
    result['seg']['class_fractions']   # {'impervious_surface': 0.31, ...}

Preprocessing
-------------
Each task's input is made by that task's *test pipeline* (its upstream
library's transforms: mmcls for cls, mmdet for det, mmseg for seg), taken
from the config's optional ``inference`` section, else from the first
``data.test`` entry of the task (``data.val`` when there is no ``test``)::

    inference = dict(pipelines=dict(cls=[...], det=[...], seg=[...]))

The pipeline's image-loading step is replaced by the already decoded image
(read once per call, bands selected and scaled to uint8 as by
:func:`~rscotr.apis.image_io.read_image`) in the channel order the loading
step would have produced (BGR, like ``LoadImageFromFile``).

Bands: ``bands`` (``--bands``) applies to every task. Without it, a task uses
the first 3 bands (R, G, B), unless the config names its bands, e.g. for a
segmentation head trained on Potsdam IRRG patches and 4-band RGBIR input::

    inference = dict(bands=dict(seg=(4, 1, 2)))   # IR, R, G for seg only

What is shared between tasks
----------------------------
Tasks whose pipelines give the *same input tensor* (same size, same values,
same ``img_shape``) form one group, and a group runs the backbone and the neck
once (:meth:`RSCoTr.simple_test_tasks`). Every head then runs on those
features; a head that uses the shared encoder runs the encoder with its own
positional encoding and level embedding, so the encoder runs once per such
head. Tasks with different input sizes -- the reference resizes cls to 224,
det to 800 and seg to 512 -- cannot share features: each size is one
backbone + neck pass, and only the decoded image is shared. To run all
tasks from one pass, give them the same pipeline in ``inference.pipelines``.
"""
import copy
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmcv import Config
from mmcv.parallel import DataContainer
from torch import nn

from ..datasets.tasks import PAPER_DATASETS, TASKS, dataset_classes, inner_dataset_cfg
from ..utils.logger import get_root_logger
from .checkpoint import load_model_checkpoint
from .image_io import BandsArg, parse_bands, prepare_image, read_raw_image

__all__ = [
    'init_model', 'inference_multitask', 'task_test_pipelines', 'prepare_task_inputs',
    'TaskGroup', 'format_cls_result', 'format_det_result', 'format_seg_result',
    'resolve_class_names', 'check_tasks', 'task_bands_for'
]

_LOAD_PREFIX = 'LoadImage'


# ---------------------------------------------------------------------- config helpers
def _test_entries(cfg: Config) -> List[Dict]:
    from ..datasets.multitask_loader import parse_loader_cfgs
    data = cfg.get('data') or {}
    split = data.get('test') or data.get('val')
    if not split:
        return []
    return parse_loader_cfgs(split)


def _entry_of(cfg: Config, head: str) -> Optional[Dict]:
    """The first test dataset that feeds the head ``head``."""
    entries = [e for e in _test_entries(cfg) if e.get('head', e['task']) == head]
    if len(entries) > 1:
        get_root_logger().info(f'{head}: {len(entries)} test datasets; inference uses the '
                               f'pipeline and classes of the first, {entries[0]["name"]!r}')
    return entries[0] if entries else None


def task_test_pipelines(cfg: Config, tasks: Sequence[str]) -> Dict[str, List[Dict]]:
    """The test pipeline of every head named in ``tasks`` (``inference.pipelines.<head>``,
    else the first ``data.test`` dataset that feeds the head).

    Raises:
        KeyError: A head with neither.
    """
    section = (cfg.get('inference') or {}).get('pipelines') or {}
    pipelines = {}
    for task in tasks:
        if section.get(task) is not None:
            pipelines[task] = copy.deepcopy(list(section[task]))
            continue
        entry = _entry_of(cfg, task)
        dataset_cfg = inner_dataset_cfg(entry['dataset']) if entry else {}
        if not dataset_cfg.get('pipeline'):
            raise KeyError(f'no test pipeline for the head {task!r}: add a data.test entry '
                           f"that feeds it or inference.pipelines.{task} to the config")
        pipelines[task] = copy.deepcopy(list(dataset_cfg['pipeline']))
    return pipelines


def resolve_class_names(cfg: Config, model: nn.Module,
                        checkpoint_meta: Optional[Dict] = None
                        ) -> Tuple[Dict[str, Tuple[str, ...]], Dict[str, Any]]:
    """Class names (and palettes) of every head of ``model``.

    Looked up in order: the checkpoint's ``meta['CLASSES']`` (a dict keyed by
    task or by dataset name), the first ``data.test`` dataset of the task
    (:func:`~rscotr.datasets.tasks.dataset_classes`), and the classes of the
    paper's dataset of the task (:data:`~rscotr.datasets.tasks.PAPER_DATASETS`:
    RESISC45, DIOR, Potsdam with 5 classes or, released protocol, 6). A list
    whose length differs from the head's ``num_classes`` is skipped (with a
    warning); the fallback is ``class_0, class_1, ...``.

    Returns:
        tuple: ``({head name: names}, {head name: palette or None})``.
    """
    logger = get_root_logger()
    meta_classes = (checkpoint_meta or {}).get('CLASSES')
    names, palettes = {}, {}
    for name, head in model.heads.items():
        task = head.task
        num = int(getattr(head, 'num_classes', 0))
        candidates = []
        entry = _entry_of(cfg, name)
        if isinstance(meta_classes, dict):
            for key in (name, entry['name'] if entry else None):
                if key is not None and meta_classes.get(key) is not None:
                    candidates.append(('checkpoint meta', meta_classes[key], None))
        if entry is not None:
            classes, palette = dataset_classes(task, entry['dataset'])
            if classes is not None:
                candidates.append((f'dataset {entry["name"]!r}', classes, palette))
        candidates += [('default', *dataset_classes(task, cfg)) for cfg in PAPER_DATASETS[task]]
        chosen = None
        for source, classes, palette in candidates:
            if len(classes) == num:
                chosen = (tuple(str(c) for c in classes), palette)
                break
            if source != 'default':
                logger.warning(f'{name}: {source} has {len(classes)} classes, the head '
                               f'predicts {num}; ignoring those names')
        if chosen is None:
            chosen = (tuple(f'class_{i}' for i in range(num)), None)
        names[name], palettes[name] = chosen
    return names, palettes


# ---------------------------------------------------------------------- model
def init_model(config: Union[str, os.PathLike, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[Dict] = None) -> nn.Module:
    """Build an RSCoTr model from a config and load its weights for inference.

    Args:
        config: Config file or :class:`mmcv.Config` (copied, not changed).
        checkpoint: Checkpoint path or URL (see
            :func:`~rscotr.apis.checkpoint.load_model_checkpoint`; checkpoints
            of the original release are converted); None leaves the weights
            as built (a warning is logged).
        device: ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.
        cfg_options: Overrides merged into the config
            (``{'model.heads.det.test_cfg.max_per_img': 100}``).

    Returns:
        nn.Module: The model in eval mode on ``device``, with ``model.cfg``,
        ``model.CLASSES`` (``{task: class names}``, see
        :func:`resolve_class_names`), ``model.PALETTE`` (``{task: colours or
        None}``) and ``model.checkpoint_meta`` (the checkpoint's ``meta``).

    Raises:
        ConfigError: The config file cannot be read, or a ``cfg_options`` key
            is not in it (one line naming the file or key).
        RuntimeError: ``device`` is CUDA and no GPU is available.
        CheckpointError: The checkpoint cannot be read, is not a checkpoint
            or holds the weights of another model.
    """
    from ..models import build_model
    from ..utils.config import check_cfg_options, load_config
    if isinstance(config, (str, os.PathLike)):
        cfg = load_config(os.fspath(config), cfg_options)
    elif isinstance(config, Config):
        cfg = copy.deepcopy(config)
        if cfg_options:
            check_cfg_options(cfg, cfg_options)
            cfg.merge_from_dict(cfg_options)
    else:
        raise TypeError(f'config must be a file name or an mmcv Config, got {type(config)}')
    if str(device).startswith('cuda') and not torch.cuda.is_available():
        raise RuntimeError(f'device {device!r} requested but no CUDA GPU is available')
    logger = get_root_logger()
    model = build_model(copy.deepcopy(cfg.model))
    meta: Dict = {}
    if checkpoint is not None:
        meta = load_model_checkpoint(model, checkpoint, logger=logger)
    else:
        logger.warning('init_model: no checkpoint given, the model has untrained weights')
    model.CLASSES, model.PALETTE = resolve_class_names(cfg, model, meta)
    model.checkpoint_meta = meta
    model.cfg = cfg
    model.to(device)
    model.eval()
    return model


# ---------------------------------------------------------------------- preprocessing
def _compose(task: str, pipeline: List[Dict]):
    if task == 'cls':
        from mmcls.datasets.pipelines import Compose
    elif task == 'det':
        from mmdet.datasets.pipelines import Compose
    else:
        from mmseg.datasets.pipelines import Compose
    return Compose(pipeline)


def _initial_results(task: str, img: np.ndarray, filename: Optional[str]) -> Dict:
    """What the task library's ``LoadImageFromFile`` would have produced."""
    results = dict(filename=filename, ori_filename=osp.basename(filename) if filename else None,
                   img=img, img_shape=img.shape, ori_shape=img.shape)
    if task == 'det':
        results['img_fields'] = ['img']
    elif task == 'seg':
        results.update(pad_shape=img.shape, scale_factor=1.0,
                       img_norm_cfg=dict(mean=np.zeros(img.shape[2], dtype=np.float32),
                                         std=np.ones(img.shape[2], dtype=np.float32),
                                         to_rgb=False))
    return results


class TaskGroup:
    """Tasks that share one input tensor (one backbone + neck pass).

    Attributes:
        tasks: The tasks, in request order.
        img: (3, H, W) input tensor.
        img_meta: Merged meta of the tasks' pipelines.
    """

    def __init__(self, task: str, img: torch.Tensor, img_meta: Dict):
        self.tasks = [task]
        self.img = img
        self.img_meta = dict(img_meta)

    def accepts(self, img: torch.Tensor, img_meta: Dict) -> bool:
        """Whether a task with this input can share the group's features."""
        same_shape = tuple(img_meta.get('img_shape', ())) == tuple(
            self.img_meta.get('img_shape', ()))
        return img.shape == self.img.shape and same_shape and torch.equal(img, self.img)

    def add(self, task: str, img_meta: Dict) -> None:
        self.tasks.append(task)
        for key, value in img_meta.items():
            self.img_meta.setdefault(key, value)

    def __repr__(self) -> str:
        return f'TaskGroup(tasks={self.tasks}, input={tuple(self.img.shape[-2:])})'


def _single_input(data: Dict, task: str) -> Tuple[torch.Tensor, Dict]:
    img, meta = data['img'], data['img_metas']
    if isinstance(img, (list, tuple)):
        if len(img) != 1:
            raise NotImplementedError(f'{task}: test-time augmentation ({len(img)} views) is '
                                      'not supported by inference')
        img, meta = img[0], meta[0]
    if isinstance(img, DataContainer):
        img = img.data
    if isinstance(meta, DataContainer):
        meta = meta.data
    return img, dict(meta)


def _load_step(pipeline: List[Dict]) -> Tuple[Dict, List[Dict]]:
    if pipeline and str(pipeline[0].get('type', '')).startswith(_LOAD_PREFIX):
        return dict(pipeline[0]), pipeline[1:]
    return {}, pipeline


def prepare_task_inputs(model: nn.Module, img: Union[np.ndarray, Dict[str, np.ndarray]],
                        tasks: Sequence[str],
                        filename: Optional[str] = None) -> List[TaskGroup]:
    """Run every task's test pipeline on ``img`` and group tasks with equal inputs.

    Args:
        model: From :func:`init_model` (``model.cfg`` holds the pipelines).
        img: (H, W, 3) uint8 in RGB (band) order, or ``{task: image}``.
        tasks: Tasks to prepare.
        filename: Recorded in the metas.

    Returns:
        list: :class:`TaskGroup` s, in order of their first task.
    """
    import cv2
    images = img if isinstance(img, dict) else {task: img for task in tasks}
    groups: List[TaskGroup] = []
    bgr: Dict[int, np.ndarray] = {}  # converted once per distinct image
    for task, pipeline in task_test_pipelines(model.cfg, tasks).items():
        load, transforms = _load_step(pipeline)
        task_img = images[task]
        if load.get('channel_order', 'bgr') != 'rgb':
            if id(task_img) not in bgr:
                bgr[id(task_img)] = cv2.cvtColor(task_img, cv2.COLOR_RGB2BGR)
            task_img = bgr[id(task_img)]
        if load.get('to_float32', False):
            task_img = task_img.astype(np.float32)
        task_type = model.heads[task].task
        data = _compose(task_type, transforms)(_initial_results(task_type, task_img, filename))
        tensor, meta = _single_input(data, task)
        for group in groups:
            if group.accepts(tensor, meta):
                group.add(task, meta)
                break
        else:
            groups.append(TaskGroup(task, tensor, meta))
    return groups


# ---------------------------------------------------------------------- output formats
def format_cls_result(scores: np.ndarray, class_names: Sequence[str],
                      k: int = 5) -> Dict[str, List[Tuple[str, float]]]:
    """``{'top5': [(name, score), ...]}``: the ``k`` best classes, best first."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    order = np.argsort(-scores, kind='stable')[:min(k, scores.size)]
    return {'top5': [(class_names[i], float(scores[i])) for i in order]}


def format_det_result(bbox_result: Sequence[np.ndarray], class_names: Sequence[str],
                      score_thr: float = 0.3) -> List[Dict]:
    """Boxes above ``score_thr`` as ``{'bbox': [x1, y1, x2, y2], 'label', 'score'}``.

    Args:
        bbox_result: Per class an (n, 5) array (x1, y1, x2, y2, score), as
            mmdet's ``bbox2result``.
        class_names: Names of the classes.
        score_thr: Keep boxes whose score is above this (as mmdet's
            ``show_result``).

    Returns:
        list: Best score first.
    """
    dets = []
    for label, boxes in enumerate(bbox_result):
        for box in np.asarray(boxes).reshape(-1, 5):
            if float(box[4]) > score_thr:
                dets.append({'bbox': [float(v) for v in box[:4]], 'label': class_names[label],
                             'score': float(box[4])})
    dets.sort(key=lambda d: -d['score'])
    return dets


#: Label of pixels whose prediction is not one of the classes.
UNLABELLED = 255


def format_seg_result(label_map: np.ndarray, class_names: Sequence[str]) -> Dict[str, Any]:
    """``{'label_map': (H, W) uint8, 'class_fractions': {name: fraction of pixels},
    'unlabelled_fraction': float}``.

    A label outside the classes becomes :data:`UNLABELLED` (255): the released
    segmentation head (scheme 2) takes the argmax over all its query channels,
    and a channel that is no class can win where a model is unsure (never seen
    after training here, common in an untrained model).
    """
    label_map = np.asarray(label_map)
    if label_map.size and label_map.min() < 0:
        raise ValueError('segmentation labels must not be negative')
    label_map = np.where(label_map < len(class_names), label_map, UNLABELLED).astype(np.uint8)
    counts = np.bincount(label_map.ravel(), minlength=256)
    total = max(int(label_map.size), 1)
    return {'label_map': label_map,
            'class_fractions': {name: float(counts[i]) / total
                                for i, name in enumerate(class_names)},
            'unlabelled_fraction': float(counts[UNLABELLED]) / total}


# ---------------------------------------------------------------------- inference
def task_bands_for(cfg: Config, tasks: Sequence[str], bands: BandsArg,
                raw: np.ndarray) -> Dict[str, Optional[Tuple[int, ...]]]:
    """Band selection per task: ``bands`` for all tasks when given, else the
    config's ``inference.bands.<task>`` when the image has those bands, else
    the default (first 3)."""
    chosen = parse_bands(bands)
    if chosen is not None:
        return {task: chosen for task in tasks}
    defaults = (cfg.get('inference') or {}).get('bands') or {}
    num = 1 if raw.ndim == 2 else raw.shape[-1]
    out: Dict[str, Optional[Tuple[int, ...]]] = {}
    for task in tasks:
        wanted = parse_bands(defaults.get(task))
        if wanted is not None and max(wanted) > num:
            get_root_logger().warning(
                f'{task}: the config asks for bands {wanted} (inference.bands.{task}), the '
                f'image has {num}; using the first 3 bands')
            wanted = None
        out[task] = wanted
    return out


def check_tasks(model: nn.Module, tasks: Optional[Sequence[str]]) -> List[str]:
    """The head names that ``tasks`` selects, in the order asked.

    Each entry is a head name, or a task type ('cls', 'det', 'seg') that
    selects every head of that task (in the model's order); None selects
    every head.

    Raises:
        KeyError: An entry that is neither (the message lists the heads).
    """
    module = getattr(model, 'module', model)
    heads = {name: head.task for name, head in module.heads.items()}
    if tasks is None:
        return list(heads)
    unknown = [t for t in dict.fromkeys(tasks) if t not in heads and t not in TASKS]
    if unknown:
        raise KeyError(f'no head or task {unknown} in the model (heads: '
                       + ', '.join(f'{n} ({t})' for n, t in heads.items()) + ')')
    chosen = list(dict.fromkeys(n for t in tasks for n, task in heads.items()
                                if n == t or (t not in heads and task == t)))
    missing = [t for t in dict.fromkeys(tasks) if t in TASKS and t not in heads.values()
               and t not in heads]
    if missing:
        raise KeyError(f'the model has no head for the task(s) {missing} (heads: '
                       + ', '.join(f'{n} ({t})' for n, t in heads.items()) + ')')
    return chosen


def inference_multitask(model: nn.Module,
                        image: Union[str, os.PathLike, np.ndarray],
                        tasks: Optional[Sequence[str]] = None,
                        score_thr: float = 0.3,
                        bands: BandsArg = None,
                        scale: str = 'auto') -> Dict[str, Any]:
    """Results of several tasks on one image, as plain Python values.

    Args:
        model: From :func:`init_model`.
        image: Image file (JPEG / PNG / (Geo)TIFF) or an (H, W[, C]) array
            (uint8 or uint16, 3 or 4 bands, band order R, G, B[, IR]).
        tasks: Head names, or task types selecting all their heads (default:
            every head; see :func:`check_tasks`).
        score_thr: Detections with a score above this are returned.
        bands: 1-based band numbers used for every task; by default each
            task's ``inference.bands.<task>`` of the config when the image
            has those bands, else the first 3.
        scale: Scaling to uint8 (see :func:`~rscotr.apis.image_io.scale_to_uint8`).

    Returns:
        dict: For each head asked (by name; the reference heads are named
        like their tasks), by the head's task:

        - ``'cls'``: ``{'top5': [(class name, score), ...]}`` (softmax scores,
          best first);
        - ``'det'``: ``[{'bbox': [x1, y1, x2, y2], 'label': name, 'score': s}, ...]``
          in pixels of the input image, best first;
        - ``'seg'``: ``{'label_map': (H, W) uint8 class indices of the input
          image, 'class_fractions': {class name: fraction of pixels}}``.

    Raises:
        ImageReadError: The image cannot be read (see :func:`read_image`).
        KeyError: A task without head or test pipeline.
    """
    tasks = check_tasks(model, tasks)
    module = getattr(model, 'module', model)
    if isinstance(image, np.ndarray):
        raw, nodata, filename = image, None, None
    else:
        raw, nodata = read_raw_image(image)
        filename = os.fspath(image)
    task_bands = task_bands_for(module.cfg, tasks, bands, raw)
    prepared: Dict[Any, np.ndarray] = {}  # one uint8 image per band selection
    for task in tasks:
        key = task_bands[task]
        if key not in prepared:
            prepared[key] = prepare_image(raw, key, scale, nodata,
                                          name=filename or '<array>')
    images = {task: prepared[task_bands[task]] for task in tasks}
    num = 1 if raw.ndim == 2 else raw.shape[-1]
    default = (1, 2, 3) if num >= 3 else (1, 1, 1)  # as select_bands chooses
    used = ', '.join(f'{task} {",".join(map(str, task_bands[task] or default))}'
                     for task in tasks)
    get_root_logger().info(f'{filename or "<array>"}: {num} band(s) of {raw.dtype}; bands used: '
                           f'{used}' + (f'; scaled to 8 bits ({scale})'
                                        if raw.dtype != np.uint8 else ''))
    groups = prepare_task_inputs(module, images, tasks, filename)
    get_root_logger().debug('inference: ' + ', '.join(repr(g) for g in groups))
    device = next(module.parameters()).device
    raw_results: Dict[str, Any] = {}
    with torch.no_grad():
        for group in groups:
            batch = group.img[None].to(device)
            metas = [dict(group.img_meta)]
            out = module.simple_test_tasks(batch, metas, group.tasks, rescale=True)
            raw_results.update({task: res[0] for task, res in out.items()})
    names = getattr(module, 'CLASSES', None)
    if not isinstance(names, dict) or any(t not in names for t in tasks):
        names, _ = resolve_class_names(module.cfg, module)
    results: Dict[str, Any] = {}
    for task in tasks:  # head names
        task_type = module.heads[task].task
        if task_type == 'cls':
            results[task] = format_cls_result(raw_results[task], names[task])
        elif task_type == 'det':
            results[task] = format_det_result(raw_results[task], names[task], score_thr)
        else:
            results[task] = format_seg_result(raw_results[task], names[task])
    return results
