"""The RSCoTr multi-task model: one backbone, neck and shared encoder, one head per task."""
import copy
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional, Sequence

import torch
from mmcv.runner import BaseModule, ModuleDict
from torch import Tensor

from ...datasets.tasks import TASKS
from ...utils.dist import mean_over_ranks
from ..builder import MODELS, build_model


@MODELS.register_module()
class RSCoTr(BaseModule):
    """Co-training Transformer for remote-sensing classification, detection and segmentation.

    The model is thin: :meth:`extract_feat` runs the backbone (and the neck when
    a head needs it) once; :meth:`head_feats` runs the shared encoder with the
    head's own positional encoding and level embedding when the head uses it;
    the head does the rest.

    Heads have names; each head knows its task type (``head.task``: 'cls',
    'det' or 'seg'). The reference model's heads are named like their tasks
    (``cls``, ``det``, ``seg``); a model co-trained on more datasets has one
    head per dataset (``resisc``, ``aid``, ...) or shares a head between
    datasets with the same classes. Every method that takes a head takes its
    name (``head=``); ``task=`` names the head called like that task.

    Args:
        backbone: Backbone config (``mmdet.SwinTransformer`` in the reference),
            returning 4 stages.
        neck: Neck config mapping Swin stages 2-4 to 4 levels of ``embed_dims``.
        encoder: Config of the :class:`SharedDeformableEncoder`.
        heads: ``{head name: head config}``; a name is a Python identifier, the
            head config's type gives its task. A config with ``like='det'`` is
            the config of the head ``det`` updated with its other keys (e.g.
            ``dict(like='det', num_classes=3)``: a second detection head with
            its own classes; see :func:`resolve_head_cfgs`). A ``None`` config
            leaves the head out (so a derived config can drop a head with
            ``model=dict(heads=dict(det=None))``).
        task_weights: ``{head or dataset name: weight}`` multiplying the losses
            of a dataset's batches (its own weight, else its head's; default 1).
        neck_in_indices: Backbone stages fed to the neck.
        train_cfg, test_cfg: Unused, kept for the mmcv/mmdet config convention.
    """

    def __init__(self,
                 backbone: dict,
                 heads: Dict[str, dict],
                 neck: Optional[dict] = None,
                 encoder: Optional[dict] = None,
                 task_weights: Optional[Dict[str, float]] = None,
                 neck_in_indices: Sequence[int] = (1, 2, 3),
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg=None):
        super().__init__(init_cfg)
        heads = resolve_head_cfgs(heads)
        bad = [name for name in heads if not str(name).isidentifier()]
        if bad:
            raise KeyError(f'model.heads: head names must be Python identifiers (they '
                           f'prefix state dict keys and logs), not {bad}')
        if not heads:
            raise ValueError('model.heads is empty: configure at least one head')
        self.backbone = build_model(backbone)
        self.neck = build_model(neck) if neck is not None else None
        self.encoder = build_model(encoder) if encoder is not None else None
        # mmcv ModuleDict so that init_weights() reaches every head
        self.heads = ModuleDict({name: build_model(cfg) for name, cfg in heads.items()})
        for task, head in self.heads.items():  # task: the head's name
            if getattr(head, 'task', None) not in TASKS:
                raise ValueError(f'model.heads.{task} is a {type(head).__name__}, which '
                                 f'declares no task; tasks are {list(TASKS)}')
            if task in TASKS and head.task != task:
                raise ValueError(f'model.heads.{task} is a {type(head).__name__}, '
                                 f'which is a {head.task!r} head')
            if head.uses_encoder and (self.encoder is None or self.neck is None):
                raise ValueError(f'the {task} head uses the shared encoder: '
                                 'configure model.neck and model.encoder')
            if head.uses_neck and self.neck is None:
                raise ValueError(f'the {task} head uses the neck: configure model.neck')
        # keyed by head or dataset name (datasets are not known here: check_config
        # checks the names against the configured loaders)
        self.task_weights = {str(k): float(v) for k, v in (task_weights or {}).items()}
        self.neck_in_indices = tuple(neck_in_indices)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

    @property
    def tasks(self) -> List[str]:
        """The head names (the tasks of the reference model)."""
        return list(self.heads.keys())

    def head_task(self, name: str) -> str:
        """The task type ('cls', 'det' or 'seg') of the head ``name``."""
        return self._head(name).task

    def loss_weight(self, head: str, dataset: Optional[str] = None) -> float:
        """The weight of a batch's losses: its dataset's, else its head's, else 1."""
        if dataset is not None and dataset in self.task_weights:
            return self.task_weights[dataset]
        return self.task_weights.get(head, 1.0)

    # ------------------------------------------------------------------ features
    def _needs_neck(self, tasks: Iterable[str]) -> bool:
        return any(self.heads[t].uses_neck for t in tasks)

    def extract_feat(self, img: Tensor, tasks: Optional[Iterable[str]] = None) -> Dict:
        """Backbone stages, plus neck levels if any of ``tasks`` needs them.

        Args:
            img: (bs, 3, H, W).
            tasks: Tasks that will use the features (all heads when None).

        Returns:
            dict: ``'backbone'`` (4 stages) and, when needed, ``'neck'`` (4 levels).
        """
        tasks = self.tasks if tasks is None else list(tasks)
        stages = tuple(self.backbone(img))
        feats = {'backbone': stages}
        if self.neck is not None and self._needs_neck(tasks):
            feats['neck'] = tuple(self.neck([stages[i] for i in self.neck_in_indices]))
        return feats

    def head_feats(self, task: str, feats: Dict, img_metas: List[dict]) -> Dict:
        """``feats`` plus the shared encoder's output for ``task``'s head if it uses it."""
        head = self.heads[task]
        if not head.uses_encoder:
            return feats
        return dict(feats, encoder=self.encoder(head.encoder_inputs(feats, img_metas)))

    def _head(self, name: str):
        if name not in self.heads:
            raise KeyError(f'no head {name!r} in this model (heads: {self.tasks})')
        return self.heads[name]

    # ------------------------------------------------------------------ train / test
    def forward_train(self, img: Tensor, img_metas: List[dict], head: Optional[str] = None,
                      task: Optional[str] = None, dataset: Optional[str] = None,
                      **gt) -> Dict:
        """Weighted losses of a head on a batch.

        Args:
            img: (bs, 3, H, W).
            img_metas: Per-image meta dicts.
            head: The head's name (default: ``task``).
            task: The batch's task type; names the head when ``head`` is None.
            dataset: The batch's dataset (its loss weight, see :meth:`loss_weight`).
            **gt: Ground truth named as in the upstream pipelines
                (``gt_label``, ``gt_bboxes``/``gt_labels``, ``gt_semantic_seg``).
        """
        task = head or task
        if task is None:
            raise TypeError('forward_train needs head= (or task=)')
        head = self._head(task)
        set_batch_input_shape(img, img_metas)
        img, gt = head.batch_augment(img, gt)
        feats = self.head_feats(task, self.extract_feat(img, [task]), img_metas)
        losses = head.forward_train(feats, img_metas, **gt)
        weight = self.loss_weight(task, dataset)
        if weight != 1.0:
            losses = OrderedDict((k, _scale(v, weight) if 'loss' in k else v)
                                 for k, v in losses.items())
        return losses

    def simple_test(self, img: Tensor, img_metas: List[dict], head: Optional[str] = None,
                    rescale: bool = True, task: Optional[str] = None) -> list:
        """Per-image results of a head (``head``, else the one named ``task``) in
        the upstream evaluation format."""
        name = head or task
        return self.simple_test_tasks(img, img_metas, [name], rescale)[name]

    def simple_test_tasks(self, img: Tensor, img_metas: List[dict], tasks: Sequence[str],
                          rescale: bool = True, scores: bool = False) -> Dict[str, list]:
        """Results of several tasks on one batch; the backbone and neck run once.

        Args:
            img: (bs, 3, H, W).
            img_metas: Per-image meta dicts.
            tasks: Names of the heads to run.
            rescale: Results in the original image (``ori_shape``).
            scores: Each head's ``simple_test_scores`` (the scores behind
                its results, e.g. per-class score maps of segmentation)
                instead of ``simple_test``.

        Returns:
            dict: ``{head name: per-image results}``.
        """
        heads = [self._head(t) for t in tasks]
        set_batch_input_shape(img, img_metas)
        feats = self.extract_feat(img, tasks)
        return {task: (head.simple_test_scores if scores else head.simple_test)(
                    self.head_feats(task, feats, img_metas), img_metas, rescale=rescale)
                for task, head in zip(tasks, heads)}

    def forward_test(self, img, img_metas, head: Optional[str] = None, rescale: bool = True,
                     task: Optional[str] = None, **kwargs) -> list:
        """Test-time entry accepting the upstream test-pipeline layouts.

        mmdet/mmseg test pipelines wrap ``img``/``img_metas`` in a list over
        test-time augmentations; only the single (non-augmented) entry is used.
        """
        if isinstance(img, (list, tuple)):
            if len(img) != 1:
                raise NotImplementedError('test-time augmentation is not supported; '
                                          f'got {len(img)} augmented views')
            img, img_metas = img[0], img_metas[0]
        return self.simple_test(img, img_metas, head=head or task, rescale=rescale)

    def forward(self, img, img_metas, return_loss: bool = True, **kwargs):
        """mmcv convention: losses when ``return_loss`` else test results."""
        if return_loss:
            return self.forward_train(img, img_metas, **kwargs)
        return self.forward_test(img, img_metas, **kwargs)

    # ------------------------------------------------------------------ runner contract
    def train_step(self, data: Dict, optimizer=None) -> Dict:
        """One training step on a tagged batch (mmcv runner contract).

        ``data`` holds the collated batch plus ``task``, ``dataset`` and
        ``head`` (added by the multi-task loader; the head defaults to the one
        named like the task). Logged values are prefixed ``<task>.<dataset>.``.
        """
        data = dict(data)
        task = data.pop('task')
        dataset = data.pop('dataset', task)
        head = data.pop('head', task)
        losses = self(**data, head=head, dataset=dataset)
        loss, log_vars = parse_losses(losses)
        prefix = f'{task}.{dataset}.'
        log_vars = OrderedDict((prefix + k, v) for k, v in log_vars.items())
        return dict(loss=loss, log_vars=log_vars, num_samples=len(data['img_metas']),
                    task=task, dataset=dataset, head=head)

    def val_step(self, data: Dict, optimizer=None) -> Dict:
        """Same as :meth:`train_step` (losses on a validation batch)."""
        return self.train_step(data, optimizer)


def resolve_head_cfgs(heads: Dict[str, Optional[dict]]) -> Dict[str, dict]:
    """Head configs with ``like=`` references resolved and ``None`` heads left out.

    ``dict(like='det', num_classes=3)`` becomes a deep copy of the config of
    the head ``det`` whose keys are updated by the other keys (nested dicts
    merged key by key, as ``_base_`` configs merge). The referenced head must
    be configured (it may itself use ``like``; cycles are refused).

    Raises:
        KeyError: ``like`` names no configured head, or the references loop.
    """
    heads = {name: cfg for name, cfg in heads.items() if cfg is not None}
    resolved: Dict[str, dict] = {}

    def resolve(name: str, chain: tuple) -> dict:
        if name in resolved:
            return resolved[name]
        cfg = dict(heads[name])
        like = cfg.pop('like', None)
        if like is not None:
            if like not in heads:
                raise KeyError(f"model.heads.{name}: like={like!r} names no head; heads are "
                               f'{sorted(heads)}')
            if like in chain:
                raise KeyError(f'model.heads: the like= references loop: '
                               f"{' -> '.join(chain + (like, ))}")
            cfg = _merged(resolve(like, chain + (like, )), cfg)
        resolved[name] = cfg
        return cfg

    return {name: resolve(name, (name, )) for name in heads}


def head_tasks_of_config(heads: Dict[str, Optional[dict]]) -> Dict[str, Optional[str]]:
    """``{head name: task}`` of a ``model.heads`` config, without building the heads
    (the task a head type declares; None for a type that declares none)."""
    out = {}
    for name, cfg in resolve_head_cfgs(heads).items():
        head_type = MODELS.get(cfg.get('type', '')) if isinstance(cfg, dict) else None
        out[name] = getattr(head_type, 'task', None) or None
    return out


def _merged(base: dict, update: dict) -> dict:
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def set_batch_input_shape(img: Tensor, img_metas: List[dict]) -> None:
    """Record the padded batch size (h, w) in every meta, as mmdet's detectors do."""
    shape = tuple(img.shape[-2:])
    for meta in img_metas:
        meta['batch_input_shape'] = shape


def _scale(value, weight: float):
    if isinstance(value, (list, tuple)):
        return type(value)(v * weight for v in value)
    return value * weight


def parse_losses(losses: Dict) -> tuple:
    """Sum the ``loss`` terms of a flat loss dict and make scalar log values.

    Under ``torch.distributed`` the log values are the means over the ranks
    (:func:`~rscotr.utils.dist.mean_over_ranks`: the same collectives on every
    rank, whatever keys its batch produced); the returned loss stays this
    rank's.

    Returns:
        tuple: (total loss tensor of this rank, OrderedDict of floats with the
        ``loss`` total).
    """
    log_vars = OrderedDict()
    for name, value in losses.items():
        if isinstance(value, Tensor):
            log_vars[name] = value.mean()
        elif isinstance(value, (list, tuple)):
            log_vars[name] = sum(v.mean() for v in value)
        elif isinstance(value, (int, float)):
            log_vars[name] = torch.tensor(float(value))
        else:
            raise TypeError(f'{name} is not a tensor or list of tensors')
    loss = sum(v for k, v in log_vars.items() if 'loss' in k)
    log_vars['loss'] = loss
    return loss, mean_over_ranks(log_vars)
