"""Plots of training logs and of the classification confusion matrix (matplotlib, Agg).

PNG files are written atomically (:func:`rscotr.apis.image_io.atomic_write_bytes`).
"""
import fnmatch
import io
import json
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

# training log keys are <task>.<dataset>.<name>
from ...datasets.tasks import TASKS
from ...utils.io import PathLike

__all__ = [
    'confusion_matrix', 'plot_confusion_matrix', 'load_json_log', 'log_series',
    'resolve_log_keys', 'plot_log_curves', 'default_log_name'
]


#: Record fields of mmcv's json log that are not curves.
_LOG_FIELDS = ('mode', 'epoch', 'iter', 'time', 'data_time', 'memory')


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _save_figure(fig, out_file: PathLike, dpi: int) -> None:
    from ...utils.io import atomic_write_bytes
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=dpi, bbox_inches='tight')
    atomic_write_bytes(out_file, buf.getvalue())


# ---------------------------------------------------------------------- confusion matrix
def confusion_matrix(gt_labels: Sequence[int], pred_labels: Sequence[int],
                     num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts; rows are ground truth, columns predictions."""
    gt = np.asarray(gt_labels, dtype=np.int64).ravel()
    pred = np.asarray(pred_labels, dtype=np.int64).ravel()
    if gt.shape != pred.shape:
        raise ValueError(f'{gt.size} ground-truth labels but {pred.size} predictions')
    if gt.size and (min(gt.min(), pred.min()) < 0 or max(gt.max(), pred.max()) >= num_classes):
        raise ValueError(f'labels must be in 0..{num_classes - 1}')
    return np.bincount(gt * num_classes + pred,
                       minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], out_file: PathLike,
                          normalize: bool = True, title: Optional[str] = None,
                          dpi: int = 100) -> None:
    """Draw a confusion matrix as a PNG.

    Args:
        matrix: (N, N) counts, rows ground truth, columns predictions.
        class_names: N names.
        out_file: PNG path (written atomically).
        normalize: Show each row as percentages of its ground-truth class.
        title: Figure title.
        dpi: Resolution.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    n = len(class_names)
    if matrix.shape != (n, n):
        raise ValueError(f'matrix of shape {matrix.shape} for {n} classes')
    if normalize:
        rows = matrix.sum(axis=1, keepdims=True)
        matrix = np.divide(matrix * 100.0, rows, out=np.zeros_like(matrix), where=rows > 0)
    plt = _pyplot()
    side = float(np.clip(0.32 * n + 2.5, 5, 24))
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    try:
        im = ax.imshow(matrix, cmap='Blues', vmin=0, vmax=100 if normalize else None)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04,
                     label='% of the true class' if normalize else 'images')
        fontsize = float(np.clip(240.0 / max(n, 1), 6, 10))
        ax.set_xticks(range(n))
        ax.set_yticks(range(n))
        ax.set_xticklabels(class_names, rotation=90, fontsize=fontsize)
        ax.set_yticklabels(class_names, fontsize=fontsize)
        ax.set_xlabel('predicted class')
        ax.set_ylabel('true class')
        if n <= 25:
            threshold = (np.nanmax(matrix) if matrix.size else 0) / 2
            for i in range(n):
                for j in range(n):
                    if matrix[i, j] > 0:
                        ax.text(j, i, f'{matrix[i, j]:.0f}', ha='center', va='center',
                                fontsize=fontsize * 0.8,
                                color='white' if matrix[i, j] > threshold else 'black')
        if title:
            ax.set_title(title)
        _save_figure(fig, out_file, dpi)
    finally:
        plt.close(fig)


# ---------------------------------------------------------------------- training logs
def load_json_log(path: PathLike) -> List[Dict]:
    """Records of an mmcv json log (``<work_dir>/<timestamp>.log.json``).

    Lines without a ``mode`` (the run's meta line) are skipped.

    Raises:
        FileNotFoundError: Missing file.
        ValueError: A line that is not JSON (names the line).
    """
    path = os.fspath(path)
    records = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f'{path}:{number}: not a JSON log line ({e.msg})') from None
            if isinstance(record, dict) and 'mode' in record:
                records.append(record)
    return records


def _curve_keys(records: Sequence[Dict]) -> List[str]:
    keys: Dict[str, None] = OrderedDict()
    for record in records:
        for key, value in record.items():
            if key not in _LOG_FIELDS and isinstance(value, (int, float)) \
                    and not isinstance(value, bool):
                keys[key] = None
    return list(keys)


def resolve_log_keys(records: Sequence[Dict], patterns: Optional[Sequence[str]] = None
                     ) -> List[str]:
    """Keys of ``records`` matching ``patterns`` (exact names or shell-style globs).

    Default patterns: the total loss of every task and dataset
    (``<task>.<dataset>.loss``).

    Raises:
        KeyError: A pattern that matches no key (the message lists the keys).
    """
    available = _curve_keys(records)
    if not patterns:
        keys = [k for k in available if k.split('.')[0] in TASKS and k.endswith('.loss')]
        return keys or [k for k in available if 'loss' in k]
    keys: List[str] = []
    for pattern in patterns:
        found = [k for k in available if fnmatch.fnmatchcase(k, pattern)]
        if not found:
            raise KeyError(f'no log key matches {pattern!r}; keys: {available}')
        keys.extend(k for k in found if k not in keys)
    return keys


def log_series(records: Sequence[Dict], key: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(iterations, values)`` of one key.

    Training records are placed at their ``iter``; evaluation records
    (``mode == 'val'``, whose ``iter`` field mmcv sets to the number of
    evaluated batches) at the iteration of the training record before them.
    """
    xs, ys = [], []
    last_train_iter = 0
    for record in records:
        if record.get('mode') == 'train':
            last_train_iter = int(record.get('iter', last_train_iter))
            x = last_train_iter
        else:
            x = last_train_iter
        value = record.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            xs.append(x)
            ys.append(float(value))
    return np.asarray(xs, dtype=np.int64), np.asarray(ys, dtype=np.float64)


def _panel_of(key: str) -> str:
    """Subplot of a key: ``<task>.<dataset>`` for training keys, else ``<dataset>``."""
    parts = key.split('.')
    if parts[0] in TASKS and len(parts) >= 3:
        return f'{parts[0]}.{parts[1]}'
    if len(parts) >= 2:
        return f'{parts[0]} (evaluation)'
    return 'other'


def plot_log_curves(logs: Dict[str, Sequence[Dict]], keys: Sequence[str], out_file: PathLike,
                    title: Optional[str] = None, dpi: int = 100) -> List[str]:
    """Curves of ``keys`` against the iteration, one subplot per task and dataset.

    Args:
        logs: ``{legend name: records}`` (see :func:`load_json_log`).
        keys: Log keys (resolved names, see :func:`resolve_log_keys`).
        out_file: PNG path (written atomically).
        title: Figure title.
        dpi: Resolution.

    Returns:
        list: The subplot titles, in order.
    """
    if not keys:
        raise ValueError('no keys to plot')
    panels: Dict[str, List[str]] = OrderedDict()
    for key in keys:
        panels.setdefault(_panel_of(key), []).append(key)
    plt = _pyplot()
    cols = min(len(panels), 3)
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 4 * rows), squeeze=False)
    try:
        for ax, (panel, panel_keys) in zip(axes.ravel(), panels.items()):
            for log_name, records in logs.items():
                for key in panel_keys:
                    xs, ys = log_series(records, key)
                    if not len(xs):
                        continue
                    label = key[len(panel) + 1:] if key.startswith(panel + '.') else key
                    if len(logs) > 1:
                        label = f'{log_name}: {label}'
                    ax.plot(xs, ys, marker='o' if len(xs) < 20 else None, markersize=3,
                            label=label)
            ax.set_title(panel)
            ax.set_xlabel('iteration')
            ax.grid(True, alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=8)
        for ax in axes.ravel()[len(panels):]:
            ax.axis('off')
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        _save_figure(fig, out_file, dpi)
    finally:
        plt.close(fig)
    return list(panels)


def default_log_name(path: PathLike) -> str:
    """Legend name of a log file: its folder and file name."""
    path = os.fspath(path)
    return osp.join(osp.basename(osp.dirname(osp.abspath(path))), osp.basename(path))
