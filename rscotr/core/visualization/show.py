"""One picture per task result, and the image files behind the test datasets."""
import os.path as osp
from typing import Any, Optional, Sequence

import numpy as np

from .image import draw_cls_topk, draw_det_boxes, get_palette, overlay_seg

__all__ = ['draw_task_result', 'dataset_image_path']


def draw_task_result(task: str, img: np.ndarray, result: Any,
                     class_names: Optional[Sequence[str]] = None,
                     palette: Optional[Sequence[Sequence[int]]] = None,
                     gt_label: Optional[str] = None, alpha: float = 0.5) -> np.ndarray:
    """Draw one plain task result (see :mod:`rscotr.core.visualization.image`) on ``img``.

    Args:
        task: 'cls' (``result`` = ``[(name, score), ...]``), 'det' (list of
            box dicts) or 'seg' (an (H, W) label map, or a dict with
            ``'label_map'``).
        img: (H, W, 3) uint8 RGB.
        result: The result.
        class_names: Class names of the task (fix the colours).
        palette: Known class colours (segmentation, detection).
        gt_label: Ground-truth class name (classification).
        alpha: Weight of the segmentation colours.

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB.
    """
    if task == 'cls':
        topk = result['top5'] if isinstance(result, dict) else result
        return draw_cls_topk(img, topk, gt_label)
    if task == 'det':
        return draw_det_boxes(img, result, class_names, palette)
    if task == 'seg':
        label_map = result['label_map'] if isinstance(result, dict) else result
        num = len(class_names) if class_names is not None else int(np.max(label_map)) + 1
        return overlay_seg(img, np.asarray(label_map), get_palette(num, palette), alpha)
    raise KeyError(f'unknown task {task!r}')


def dataset_image_path(dataset, idx: int) -> str:
    """Path of image ``idx`` of an mmcls, mmdet or mmseg dataset.

    Raises:
        TypeError: A dataset of another kind.
    """
    if hasattr(dataset, 'img_infos') and hasattr(dataset, 'img_dir'):  # mmseg
        name = dataset.img_infos[idx]['filename']
        return osp.join(dataset.img_dir, name) if dataset.img_dir else name
    infos = getattr(dataset, 'data_infos', None)
    if infos is None:
        raise TypeError(f'cannot find the image files of a {type(dataset).__name__}')
    info = infos[idx]
    if 'img_info' in info:  # mmcls
        prefix = info.get('img_prefix')
        name = info['img_info']['filename']
        return osp.join(prefix, name) if prefix else name
    prefix = getattr(dataset, 'img_prefix', None)  # mmdet
    name = info['filename']
    return osp.join(prefix, name) if prefix else name
