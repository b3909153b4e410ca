"""The DINO detection head on the shared encoder.

Steps (each a method of :class:`DINOHead`):

1. :meth:`DINOHead.select_queries` - two-stage query selection: one proposal
   per encoder position (:func:`encoder_proposals`), scored by the extra class
   and box branches on the transformed memory; the top ``num_query`` become the
   (detached) reference boxes, the content queries are learned (mixed query
   selection).
2. :class:`~rscotr.models.layers.cdn.DenoisingQueryGenerator` - contrastive
   denoising queries and the self-attention mask (training only).
3. :class:`~rscotr.models.layers.dino_decoder.DINODecoder` - deformable decoder
   with iterative box refinement and look forward twice; one class and one box
   branch per layer.
4. :meth:`DINOHead.loss` - focal / L1 / GIoU losses after Hungarian matching on
   every decoder layer and the selected encoder proposals, and on the
   denoising queries against their known targets.
5. :meth:`DINOHead.simple_test` - top ``max_per_img`` (query, class) pairs,
   in mmdet's ``bbox2result`` format.

Boxes inside the head are normalised (cx, cy, w, h) in the unpadded image
(``img_shape``); ground truth and results are absolute (x1, y1, x2, y2).
"""
import copy
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmcv.cnn import bias_init_with_prob, constant_init
from mmdet.core import (bbox2result, bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh, build_assigner,
                        reduce_mean)
from mmdet.models.utils.transformer import inverse_sigmoid
from torch import Tensor, nn

from ...core.mixed_precision import force_float32
from ..builder import MODELS, build_model
from ..layers.cdn import DenoisingQueries, DenoisingQueryGenerator
from ..layers.dino_decoder import DINODecoder, default_decoder_layer  # noqa: F401 (registers)
from .base import BaseTaskHead


def encoder_proposals(padding_mask: Tensor, spatial_shapes: Tensor,
                      base_size: float = 0.05) -> Tuple[Tensor, Tensor]:
    """One box proposal per encoder position, as two-stage Deformable DETR makes them.

    A proposal is centred on its cell of the valid (unpadded) area of its level
    with side ``base_size * 2**level`` (normalised by the image).

    Args:
        padding_mask: (bs, N) bool, True at padded positions.
        spatial_shapes: (num_levels, 2) (h, w) of every level.
        base_size: Side of a level-0 proposal.

    Returns:
        tuple: ``proposals`` (bs, N, 4) normalised (cx, cy, w, h) before the
        sigmoid (``inverse_sigmoid``; 0 at invalid positions) and ``valid``
        (bs, N) bool: not padded and the box lies inside (0.01, 0.99).
    """
    bs = padding_mask.shape[0]
    boxes = []
    start = 0
    for lvl, (h, w) in enumerate(spatial_shapes.tolist()):
        mask = padding_mask[:, start:start + h * w].view(bs, h, w)
        start += h * w
        valid_h = (~mask[:, :, 0]).sum(1).clamp(min=1)
        valid_w = (~mask[:, 0, :]).sum(1).clamp(min=1)
        ys, xs = torch.meshgrid(torch.arange(h, device=mask.device),
                                torch.arange(w, device=mask.device), indexing='ij')
        cx = (xs.reshape(1, -1) + 0.5) / valid_w[:, None]
        cy = (ys.reshape(1, -1) + 0.5) / valid_h[:, None]
        wh = torch.full_like(cx, base_size * 2.0 ** lvl)
        boxes.append(torch.stack((cx, cy, wh, wh), -1))
    boxes = torch.cat(boxes, 1)
    valid = ((boxes > 0.01) & (boxes < 0.99)).all(-1) & ~padding_mask
    proposals = inverse_sigmoid(boxes.clamp(0.0, 1.0)).masked_fill(~valid[..., None], 0.0)
    return proposals, valid


@dataclass
class DINOOutputs:
    """Everything :meth:`DINOHead.forward` predicts.

    Boxes are normalised (cx, cy, w, h) in the unpadded image, after the
    sigmoid; class scores are logits (sigmoid classification, no background).

    Attributes:
        all_cls_scores: (num_layers, bs, Q, num_classes) matching queries.
        all_bbox_preds: (num_layers, bs, Q, 4).
        enc_cls_scores: (bs, Q, num_classes) of the selected encoder proposals.
        enc_bbox_preds: (bs, Q, 4).
        dn_cls_scores: (num_layers, bs, num_dn, num_classes) denoising queries
            (num_dn = 0 without denoising).
        dn_bbox_preds: (num_layers, bs, num_dn, 4).
        dn: The :class:`DenoisingQueries` used, or None.
    """
    all_cls_scores: Tensor
    all_bbox_preds: Tensor
    enc_cls_scores: Tensor
    enc_bbox_preds: Tensor
    dn_cls_scores: Tensor
    dn_bbox_preds: Tensor
    dn: Optional[DenoisingQueries] = None


def _default_decoder(embed_dims: int) -> dict:
    return dict(type='DINODecoder', num_layers=6,
                transformerlayers=default_decoder_layer(embed_dims))


@MODELS.register_module()
class DINOHead(BaseTaskHead):
    """DINO detector head (two-stage, contrastive denoising, look forward twice).

    Args:
        num_classes: Number of object classes (20 for DIOR).
        embed_dims: Channels of the encoder memory and the queries.
        num_query: Number of matching queries (proposals selected from the
            encoder, 600 in the reference).
        decoder: Config of the :class:`DINODecoder`; 6 reference layers when None.
        encoder_inputs: This head's positional encoding / level embedding for
            the shared encoder (see :class:`BaseTaskHead`).
        dn_cfg: Options of the :class:`DenoisingQueryGenerator`
            (``num_dn_queries``, ``label_noise_scale``, ``box_noise_scale``,
            ``num_groups``); None disables denoising.
        num_reg_fcs: Hidden layers of every box branch.
        rank_invalid_proposals: As released (True): an encoder proposal at a
            padded position or outside (0.01, 0.99) gets an infinite box (and
            zeroed memory) but takes part in the top-k by class score like the
            others. False: such proposals are never selected (their box is
            0 before the sigmoid), an earlier variant of this project.
        copy_branches: As released (True): the per-layer class and box
            branches start as copies of one initialised branch. False:
            every branch is initialised on its own.
        query_init: ``'normal'`` (as released: torch's default normal(0, 1)
            of the content queries) or ``'xavier'`` (xavier-uniform).
        loss_cls, loss_bbox, loss_iou: Loss configs (scoped upstream types).
        train_cfg: ``dict(assigner=...)`` of an mmdet Hungarian assigner.
        test_cfg: ``dict(max_per_img=300)``.
    """

    task = 'det'

    def __init__(self,
                 num_classes: int,
                 embed_dims: int = 256,
                 num_query: int = 600,
                 decoder: Optional[dict] = None,
                 encoder_inputs: Optional[dict] = None,
                 dn_cfg: Optional[dict] = dict(num_dn_queries=100, label_noise_scale=0.5,
                                               box_noise_scale=1.0),
                 num_reg_fcs: int = 2,
                 rank_invalid_proposals: bool = True,
                 copy_branches: bool = True,
                 query_init: str = 'normal',
                 loss_cls: dict = dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0,
                                       alpha=0.25, loss_weight=1.0),
                 loss_bbox: dict = dict(type='mmdet.L1Loss', loss_weight=5.0),
                 loss_iou: dict = dict(type='mmdet.GIoULoss', loss_weight=2.0),
                 train_cfg: Optional[dict] = dict(assigner=dict(
                     type='HungarianAssigner',
                     cls_cost=dict(type='FocalLossCost', weight=2.0),
                     reg_cost=dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                     iou_cost=dict(type='IoUCost', iou_mode='giou', weight=2.0))),
                 test_cfg: Optional[dict] = dict(max_per_img=300),
                 init_cfg=None):
        if encoder_inputs is None:
            encoder_inputs = dict(
                positional_encoding=dict(type='SinePositionalEncoding', num_feats=embed_dims // 2,
                                         normalize=True, offset=0.0, temperature=20),
                num_levels=4, embed_dims=embed_dims)
        super().__init__(encoder_inputs=encoder_inputs, init_cfg=init_cfg)
        if self.encoder_input_builder.embed_dims != embed_dims:
            raise ValueError(f'encoder_inputs.embed_dims ({self.encoder_input_builder.embed_dims})'
                             f' must equal embed_dims ({embed_dims})')
        if not loss_cls.get('use_sigmoid', False):
            raise ValueError('DINOHead classifies with sigmoids: set loss_cls.use_sigmoid=True')
        if query_init not in ('normal', 'xavier'):
            raise ValueError(f"query_init must be 'normal' or 'xavier', got {query_init!r}")
        self.num_classes = num_classes
        self.embed_dims = embed_dims
        self.num_query = num_query
        self.rank_invalid_proposals = bool(rank_invalid_proposals)
        self.copy_branches = bool(copy_branches)
        self.query_init = query_init
        self.train_cfg = train_cfg
        self.test_cfg = dict(test_cfg or {})

        self.decoder = build_model(copy.deepcopy(decoder) if decoder is not None
                                   else _default_decoder(embed_dims))
        if self.decoder.embed_dims != embed_dims:
            raise ValueError(f'decoder embed_dims ({self.decoder.embed_dims}) must equal '
                             f'embed_dims ({embed_dims})')
        self.num_layers = self.decoder.num_layers
        # query selection: memory transform, content queries
        self.memory_trans_fc = nn.Linear(embed_dims, embed_dims)
        self.memory_trans_norm = nn.LayerNorm(embed_dims)
        self.query_embedding = nn.Embedding(num_query, embed_dims)
        # one class / box branch per decoder layer, plus one for the encoder proposals (last)
        self.cls_branches = nn.ModuleList(
            nn.Linear(embed_dims, num_classes) for _ in range(self.num_layers + 1))
        self.reg_branches = nn.ModuleList(
            self._reg_branch(embed_dims, num_reg_fcs) for _ in range(self.num_layers + 1))
        self.dn_generator = (DenoisingQueryGenerator(num_classes, embed_dims, **dn_cfg)
                             if dn_cfg is not None else None)

        self.loss_cls = build_model(loss_cls)
        self.loss_bbox = build_model(loss_bbox)
        self.loss_iou = build_model(loss_iou)
        self.assigner = build_assigner(train_cfg['assigner']) if train_cfg else None

    @staticmethod
    def _reg_branch(embed_dims: int, num_fcs: int) -> nn.Sequential:
        layers = []
        for _ in range(num_fcs):
            layers += [nn.Linear(embed_dims, embed_dims), nn.ReLU()]
        return nn.Sequential(*layers, nn.Linear(embed_dims, 4))

    def init_weights(self) -> None:
        """Decoder and denoising init, xavier memory transform, focal-prior class
        biases, zero last box layers; see ``copy_branches`` and ``query_init``."""
        super().init_weights()
        nn.init.xavier_uniform_(self.memory_trans_fc.weight)
        if self.query_init == 'xavier':
            nn.init.xavier_uniform_(self.query_embedding.weight)
        bias = bias_init_with_prob(0.01)
        for branch in self.cls_branches:
            nn.init.constant_(branch.bias, bias)
        for branch in self.reg_branches:
            constant_init(branch[-1], 0.0, bias=0.0)
        if self.copy_branches:
            for branches in (self.cls_branches, self.reg_branches):
                for branch in branches[1:]:
                    branch.load_state_dict(branches[0].state_dict())

    # ------------------------------------------------------------------ forward
    def select_queries(self, memory: Tensor, padding_mask: Tensor,
                       spatial_shapes: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Two-stage query selection from the encoder memory.

        Args:
            memory: (bs, N, C).
            padding_mask: (bs, N) bool, True at padded positions.
            spatial_shapes: (num_levels, 2).

        Returns:
            tuple: ``enc_cls_scores`` (bs, k, num_classes) logits and
            ``enc_bbox_preds`` (bs, k, 4) normalised cxcywh of the selected
            proposals (for the encoder loss), and ``reference`` (bs, k, 4) the
            same boxes before the sigmoid, detached; ``k = min(num_query, N)``.
            Padded and out-of-range positions have zeroed memory; see
            ``rank_invalid_proposals`` for how they are ranked.
        """
        proposals, valid = encoder_proposals(padding_mask, spatial_shapes)
        memory = memory.masked_fill(~valid[..., None], 0.0)
        memory = self.memory_trans_norm(self.memory_trans_fc(memory))
        cls_scores = self.cls_branches[self.num_layers](memory)
        rank = cls_scores.max(-1).values
        if self.rank_invalid_proposals:
            proposals = proposals.masked_fill(~valid[..., None], float('inf'))
        else:
            rank = rank.masked_fill(~valid, float('-inf'))
        coords = self.reg_branches[self.num_layers](memory) + proposals
        k = min(self.num_query, memory.shape[1])
        index = rank.topk(k, dim=1).indices
        cls_scores = cls_scores.gather(1, index[..., None].expand(-1, -1, cls_scores.shape[-1]))
        coords = coords.gather(1, index[..., None].expand(-1, -1, 4))
        return cls_scores, coords.sigmoid(), coords.detach()

    def forward(self, feats: Dict, img_metas: List[dict],
                gt_bboxes: Optional[Sequence[Tensor]] = None,
                gt_labels: Optional[Sequence[Tensor]] = None) -> DINOOutputs:
        """Predict from the shared encoder's output ``feats['encoder']``.

        Args:
            feats: Model features; only ``'encoder'`` (an ``EncoderOutput``) is used.
            img_metas: Per-image metas (``img_shape`` normalises the boxes).
            gt_bboxes: Per image (n_i, 4) absolute x1y1x2y2; with ``gt_labels``
                and in training mode they add the denoising queries.
            gt_labels: Per image (n_i,) class indices.

        Returns:
            DINOOutputs
        """
        enc = feats['encoder']
        inputs = enc.inputs
        memory = enc.memory
        bs = memory.shape[0]
        enc_cls, enc_boxes, reference = self.select_queries(memory, inputs.padding_mask,
                                                            inputs.spatial_shapes)
        k = reference.shape[1]
        query = self.query_embedding.weight[:k][None].expand(bs, -1, -1)

        dn = None
        if (self.training and self.dn_generator is not None and gt_bboxes is not None
                and gt_labels is not None):
            dn = self.dn_generator(self.normalize_gt(gt_bboxes, img_metas), gt_labels, k)
        attn_mask = None
        num_dn = 0
        if dn is not None:
            query = torch.cat((dn.label_query, query), 1)
            reference = torch.cat((dn.box_query, reference), 1)
            attn_mask = dn.attn_mask
            num_dn = dn.num_queries

        hidden, references = self.decoder(
            query, memory, inputs.padding_mask, reference.sigmoid(), inputs.spatial_shapes,
            inputs.level_start_index, inputs.valid_ratios, reg_branches=self.reg_branches,
            self_attn_mask=attn_mask)
        cls_scores = torch.stack([self.cls_branches[i](hidden[i])
                                  for i in range(self.num_layers)])
        bbox_preds = torch.stack([
            (self.reg_branches[i](hidden[i]) + inverse_sigmoid(references[i], eps=1e-3)).sigmoid()
            for i in range(self.num_layers)])
        return DINOOutputs(
            all_cls_scores=cls_scores[:, :, num_dn:],
            all_bbox_preds=bbox_preds[:, :, num_dn:],
            enc_cls_scores=enc_cls,
            enc_bbox_preds=enc_boxes,
            dn_cls_scores=cls_scores[:, :, :num_dn],
            dn_bbox_preds=bbox_preds[:, :, :num_dn],
            dn=dn)

    @staticmethod
    def normalize_gt(gt_bboxes: Sequence[Tensor], img_metas: Sequence[dict]) -> List[Tensor]:
        """Absolute x1y1x2y2 -> (cx, cy, w, h) normalised by each ``img_shape``."""
        out = []
        for boxes, meta in zip(gt_bboxes, img_metas):
            h, w = meta['img_shape'][:2]
            out.append(bbox_xyxy_to_cxcywh(boxes / boxes.new_tensor([w, h, w, h])))
        return out

    # ------------------------------------------------------------------ losses
    def forward_train(self, feats: Dict, img_metas: List[dict], gt_bboxes: List[Tensor],
                      gt_labels: List[Tensor], gt_bboxes_ignore: Optional[List[Tensor]] = None,
                      **kwargs) -> Dict[str, Tensor]:
        """Losses of a training batch (see :meth:`loss` for the keys)."""
        if gt_bboxes_ignore is not None:
            raise NotImplementedError('DINOHead does not support gt_bboxes_ignore')
        outs = self(feats, img_metas, gt_bboxes, gt_labels)
        return self.loss(outs, gt_bboxes, gt_labels, img_metas)

    @force_float32
    def loss(self, outs: DINOOutputs, gt_bboxes: List[Tensor], gt_labels: List[Tensor],
             img_metas: List[dict]) -> Dict[str, Tensor]:
        """Losses of every decoder layer, the encoder proposals and the denoising queries.

        Args:
            outs: Output of :meth:`forward`.
            gt_bboxes: Per image (n_i, 4) absolute x1y1x2y2 in the input image.
            gt_labels: Per image (n_i,) class indices.
            img_metas: Per-image metas.

        Returns:
            dict: ``loss_cls``, ``loss_bbox``, ``loss_iou`` (last layer),
            ``d{i}.loss_*`` (layers 0 .. L-2), ``interm_loss_*`` (selected
            encoder proposals), ``dn_loss_*`` and ``d{i}.dn_loss_*``
            (denoising queries; zero, without calling the losses, when the
            batch has no box and so no denoising query). All are
            averaged over the number of gt boxes (of matched or denoising
            positives), averaged over ranks when distributed.
        """
        losses = {}
        last = self.num_layers - 1
        # every set of queries (decoder layers, encoder proposals, denoising
        # queries) with its targets; the losses are normalised by the positives
        # of each set averaged over the ranks, agreed in one collective that
        # every rank issues whatever its batch holds (a batch without boxes
        # has no denoising query but still takes part)
        sets = []
        for i in range(self.num_layers):
            sets.append(('' if i == last else f'd{i}.', outs.all_cls_scores[i],
                         outs.all_bbox_preds[i],
                         self.matching_targets(outs.all_cls_scores[i], outs.all_bbox_preds[i],
                                               gt_bboxes, gt_labels, img_metas)))
        sets.append(('interm_', outs.enc_cls_scores, outs.enc_bbox_preds,
                     self.matching_targets(outs.enc_cls_scores, outs.enc_bbox_preds, gt_bboxes,
                                           gt_labels, img_metas)))
        num_dn = outs.dn_cls_scores.shape[2]
        dn_targets = (self.denoising_targets(outs.dn, outs.dn_bbox_preds[0],
                                             self.normalize_gt(gt_bboxes, img_metas), gt_labels)
                      if num_dn else None)
        dn_prefixes = ['dn_' if i == last else f'd{i}.dn_' for i in range(self.num_layers)]
        num_pos = [targets[-1] for *_, targets in sets] + [dn_targets[-1] if num_dn else 0]
        avg_factors = self.avg_factors(num_pos, outs.all_cls_scores)
        for (prefix, cls_scores, bbox_preds, targets), avg_factor in zip(sets, avg_factors):
            self._add_losses(losses, prefix, self.loss_by_targets(
                cls_scores, bbox_preds, *targets[:-1], avg_factor, img_metas))
        for i, prefix in enumerate(dn_prefixes):
            if num_dn:
                terms = self.loss_by_targets(outs.dn_cls_scores[i], outs.dn_bbox_preds[i],
                                             *dn_targets[:-1], avg_factors[-1], img_metas)
            else:
                # no box in the batch, no denoising query: zero losses (an empty
                # tensor must not reach the losses: mmcv's CUDA focal loss raises on it)
                terms = (outs.all_cls_scores.new_zeros(()), ) * 3
            self._add_losses(losses, prefix, terms)
        return losses

    @staticmethod
    def _add_losses(losses: Dict[str, Tensor], prefix: str,
                    terms: Tuple[Tensor, Tensor, Tensor]) -> None:
        for name, value in zip(('loss_cls', 'loss_bbox', 'loss_iou'), terms):
            losses[prefix + name] = value

    @staticmethod
    def avg_factors(num_pos: Sequence[int], like: Tensor) -> List[float]:
        """Loss normalisers: positives of each set of queries, averaged over the ranks.

        One all-reduce of the whole list (mmdet's ``reduce_mean``; identity
        without a process group), issued by every rank for every batch, so
        that the ranks' collectives stay in step. Each factor is at least 1.

        Args:
            num_pos: Positives of each set of queries on this rank.
            like: A tensor on the device (and backend) of the collective.
        """
        factors = reduce_mean(like.new_tensor([float(n) for n in num_pos], dtype=torch.float32))
        return factors.clamp(min=1.0).tolist()

    @torch.no_grad()
    def matching_targets(self, cls_scores: Tensor, bbox_preds: Tensor,
                         gt_bboxes: Sequence[Tensor], gt_labels: Sequence[Tensor],
                         img_metas: Sequence[dict]) -> Tuple[Tensor, Tensor, Tensor, int]:
        """Targets of one layer's queries by Hungarian matching.

        Args:
            cls_scores: (bs, Q, num_classes) logits.
            bbox_preds: (bs, Q, 4) normalised cxcywh.
            gt_bboxes, gt_labels, img_metas: As in :meth:`loss`.

        Returns:
            tuple: ``labels`` (bs, Q) long (``num_classes`` = background),
            ``bbox_targets`` (bs, Q, 4) normalised cxcywh, ``bbox_weights``
            (bs, Q, 4), and the number of positives.
        """
        bs, q = cls_scores.shape[:2]
        labels = torch.full((bs, q), self.num_classes, dtype=torch.long, device=cls_scores.device)
        bbox_targets = bbox_preds.new_zeros(bs, q, 4)
        bbox_weights = bbox_preds.new_zeros(bs, q, 4)
        num_pos = 0
        for i in range(bs):
            result = self.assigner.assign(bbox_preds[i], cls_scores[i], gt_bboxes[i],
                                          gt_labels[i], img_metas[i])
            pos = torch.nonzero(result.gt_inds > 0, as_tuple=False).squeeze(1)
            gt_inds = result.gt_inds[pos] - 1
            labels[i, pos] = gt_labels[i][gt_inds]
            bbox_targets[i, pos] = self.normalize_gt([gt_bboxes[i][gt_inds]], [img_metas[i]])[0]
            bbox_weights[i, pos] = 1.0
            num_pos += len(pos)
        return labels, bbox_targets, bbox_weights, num_pos

    def denoising_targets(self, dn: Optional[DenoisingQueries], dn_bbox_preds: Tensor,
                          gts: Sequence[Tensor],
                          gt_labels: Sequence[Tensor]) -> Tuple[Tensor, Tensor, Tensor, int]:
        """Targets of the denoising queries (same for every layer).

        Positives regress to and classify as the gt they copy; negatives and
        padding slots are background.

        Args:
            dn: The denoising queries of the batch (None: no queries).
            dn_bbox_preds: (bs, num_dn, 4), for shape, dtype and device.
            gts: Per image (n_i, 4) normalised cxcywh gt.
            gt_labels: Per image (n_i,) labels.

        Returns:
            tuple: as :meth:`matching_targets`.
        """
        bs, num_dn = dn_bbox_preds.shape[:2]
        device = dn_bbox_preds.device
        labels = torch.full((bs, num_dn), self.num_classes, dtype=torch.long, device=device)
        bbox_targets = dn_bbox_preds.new_zeros(bs, num_dn, 4)
        bbox_weights = dn_bbox_preds.new_zeros(bs, num_dn, 4)
        num_pos = 0
        if dn is not None:
            for i in range(bs):
                query_inds, gt_inds = dn.positive_indices(len(gts[i]), device)
                labels[i, query_inds] = gt_labels[i][gt_inds]
                bbox_targets[i, query_inds] = gts[i][gt_inds].to(bbox_targets.dtype)
                bbox_weights[i, query_inds] = 1.0
                num_pos += len(query_inds)
        return labels, bbox_targets, bbox_weights, num_pos

    def loss_by_targets(self, cls_scores: Tensor, bbox_preds: Tensor, labels: Tensor,
                        bbox_targets: Tensor, bbox_weights: Tensor, avg_factor: float,
                        img_metas: Sequence[dict]) -> Tuple[Tensor, Tensor, Tensor]:
        """Focal, L1 and GIoU losses of one set of queries given their targets.

        Args:
            cls_scores: (bs, Q, num_classes) logits.
            bbox_preds: (bs, Q, 4) normalised cxcywh.
            labels, bbox_targets, bbox_weights: From :meth:`matching_targets`
                or :meth:`denoising_targets`.
            avg_factor: The normaliser (:meth:`avg_factors` of their positives).
            img_metas: Per-image metas (GIoU is computed in pixels).

        Returns:
            tuple: ``(loss_cls, loss_bbox, loss_iou)`` scalars.
        """
        loss_cls = self.loss_cls(cls_scores.reshape(-1, self.num_classes), labels.reshape(-1),
                                 avg_factor=avg_factor)
        factors = torch.stack([
            bbox_preds.new_tensor([m['img_shape'][1], m['img_shape'][0]] * 2) for m in img_metas
        ])[:, None]
        pred_xyxy = (bbox_cxcywh_to_xyxy(bbox_preds) * factors).reshape(-1, 4)
        target_xyxy = (bbox_cxcywh_to_xyxy(bbox_targets) * factors).reshape(-1, 4)
        weights = bbox_weights.reshape(-1, 4)
        loss_iou = self.loss_iou(pred_xyxy, target_xyxy, weights, avg_factor=avg_factor)
        loss_bbox = self.loss_bbox(bbox_preds.reshape(-1, 4), bbox_targets.reshape(-1, 4),
                                   weights, avg_factor=avg_factor)
        return loss_cls, loss_bbox, loss_iou

    # ------------------------------------------------------------------ test
    def simple_test(self, feats: Dict, img_metas: List[dict], rescale: bool = True) -> list:
        """Detections of every image, as mmdet's ``bbox2result`` returns them.

        Returns:
            list: per image, a list over classes of (n, 5) float32 arrays
            (x1, y1, x2, y2, score), in the original image when ``rescale``.
        """
        outs = self(feats, img_metas)
        cls_scores = outs.all_cls_scores[-1]
        bbox_preds = outs.all_bbox_preds[-1]
        results = []
        for i, meta in enumerate(img_metas):
            bboxes, labels = self.get_bboxes_single(cls_scores[i], bbox_preds[i], meta, rescale)
            results.append(bbox2result(bboxes, labels, self.num_classes))
        return results

    def get_bboxes_single(self, cls_score: Tensor, bbox_pred: Tensor, img_meta: dict,
                          rescale: bool = True) -> Tuple[Tensor, Tensor]:
        """Top ``max_per_img`` detections of one image.

        Args:
            cls_score: (Q, num_classes) logits.
            bbox_pred: (Q, 4) normalised cxcywh.
            img_meta: ``img_shape``; ``scale_factor`` and ``ori_shape`` when
                ``rescale``.

        Returns:
            tuple: ``bboxes`` (k, 5) (x1, y1, x2, y2, score) and ``labels`` (k,).
        """
        scores = cls_score.sigmoid().flatten()
        k = min(self.test_cfg.get('max_per_img', 300), scores.numel())
        scores, index = scores.topk(k)
        labels = index % self.num_classes
        bboxes = bbox_cxcywh_to_xyxy(bbox_pred[torch.div(index, self.num_classes,
                                                         rounding_mode='floor')])
        h, w = img_meta['img_shape'][:2]
        bboxes = bboxes * bboxes.new_tensor([w, h, w, h])
        bboxes[:, 0::2] = bboxes[:, 0::2].clamp(0, w)
        bboxes[:, 1::2] = bboxes[:, 1::2].clamp(0, h)
        if rescale:
            scale = np.asarray(img_meta.get('scale_factor', 1.0), dtype=np.float32)
            bboxes = bboxes / bboxes.new_tensor(scale)
            ori_h, ori_w = img_meta.get('ori_shape', img_meta['img_shape'])[:2]
            bboxes[:, 0::2] = bboxes[:, 0::2].clamp(0, ori_w)
            bboxes[:, 1::2] = bboxes[:, 1::2].clamp(0, ori_h)
        return torch.cat((bboxes, scores[:, None]), -1), labels


__all__ = ['DINOHead', 'DINOOutputs', 'encoder_proposals']
