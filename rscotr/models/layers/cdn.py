"""Contrastive denoising (CDN) queries of DINO and their self-attention mask.

In training, DINO feeds the decoder noised copies of the ground-truth boxes next
to its matching queries. Every copy exists twice per group: a *positive* one
(small noise, learns to reconstruct its box) and a *negative* one (larger
noise, learns to predict "no object"). The layout of the ``num_dn`` denoising
queries, in front of the ``num_matching`` matching queries, is::

    [ group 0: max_gt positives | max_gt negatives ][ group 1: ... ] ... [ matching ]

Image ``i`` fills the first ``n_i`` slots of every positive and negative block;
the rest of the ``max_gt`` slots are padding (zero content, zero logit box).
The attention mask keeps the groups apart and hides all of them from the
matching queries, so that denoising never leaks ground truth into matching.
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch
from mmcv.runner import BaseModule
from mmdet.core import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh
from mmdet.models.utils.transformer import inverse_sigmoid
from torch import Tensor, nn


def denoising_attn_mask(num_groups: int, group_size: int, num_matching: int,
                        device: Optional[torch.device] = None) -> Tensor:
    """Self-attention mask of the denoising + matching queries.

    Args:
        num_groups: Number of denoising groups.
        group_size: Queries per group (2 * max_gt: positives then negatives).
        num_matching: Number of matching queries (after the denoising ones).
        device: Device of the mask.

    Returns:
        Tensor: (num_dn + num_matching, num_dn + num_matching) bool with
        ``num_dn = num_groups * group_size``; True where query ``i`` (row) may
        NOT attend to query ``j`` (column), as ``nn.MultiheadAttention`` takes it.
        Matching queries see only matching queries; a denoising query sees its
        own group and the matching queries.
    """
    num_dn = num_groups * group_size
    size = num_dn + num_matching
    mask = torch.zeros(size, size, dtype=torch.bool, device=device)
    mask[num_dn:, :num_dn] = True
    group = torch.arange(num_dn, device=device) // max(group_size, 1)
    mask[:num_dn, :num_dn] = group[:, None] != group[None, :]
    return mask


@dataclass
class DenoisingQueries:
    """The denoising part of the decoder input for one batch.

    Attributes:
        label_query: (bs, num_dn, C) content queries (embedded noised labels,
            zero at padding slots).
        box_query: (bs, num_dn, 4) noised boxes, normalised (cx, cy, w, h)
            before the sigmoid (``inverse_sigmoid``; 0 at padding slots).
        attn_mask: (num_dn + num_matching, num_dn + num_matching) bool, see
            :func:`denoising_attn_mask`.
        num_groups: Number of groups.
        max_gt: Most ground-truth boxes of one image in the batch (group size
            is ``2 * max_gt``).
    """
    label_query: Tensor
    box_query: Tensor
    attn_mask: Tensor
    num_groups: int
    max_gt: int

    @property
    def num_queries(self) -> int:
        """Number of denoising queries, ``num_groups * 2 * max_gt``."""
        return self.num_groups * 2 * self.max_gt

    def positive_indices(self, num_gt: int, device=None) -> Tuple[Tensor, Tensor]:
        """Where an image's positive queries are and which gt each one copies.

        Args:
            num_gt: Number of gt boxes of the image.

        Returns:
            tuple: ``(query_inds, gt_inds)``, both (num_groups * num_gt,) long.
            The negative copy of ``query_inds[k]`` is ``query_inds[k] + max_gt``.
        """
        starts = torch.arange(self.num_groups, device=device) * 2 * self.max_gt
        gt_inds = torch.arange(num_gt, device=device)
        query_inds = (starts[:, None] + gt_inds[None]).flatten()
        return query_inds, gt_inds.repeat(self.num_groups)


class DenoisingQueryGenerator(BaseModule):
    """Builds DINO's contrastive denoising queries from the ground truth.

    Args:
        num_classes: Number of object classes.
        embed_dims: Channels of a query.
        num_dn_queries: Denoising budget. As released
            (``count_negatives=False``): ``num_groups = max(1, num_dn_queries
            // max_gt)``, each group holding a positive and a negative query
            per box, so up to ``2 * num_dn_queries`` queries. With
            ``count_negatives=True`` the budget counts both:
            ``num_groups = max(1, num_dn_queries // (2 * max_gt))``.
        label_noise_scale: A label is replaced by a random class with
            probability ``label_noise_scale / 2``.
        box_noise_scale: Scale of the corner noise, relative to half the box
            size: positives move by ``[0, 1) * scale * wh / 2``, negatives by
            ``[1, 2) * scale * wh / 2`` per corner coordinate.
        num_groups: Fixed number of groups instead of dynamic ones.
        count_negatives: See ``num_dn_queries``.
    """

    def __init__(self,
                 num_classes: int,
                 embed_dims: int,
                 num_dn_queries: int = 100,
                 label_noise_scale: float = 0.5,
                 box_noise_scale: float = 1.0,
                 num_groups: Optional[int] = None,
                 count_negatives: bool = False,
                 init_cfg=None):
        super().__init__(init_cfg)
        self.num_classes = num_classes
        self.embed_dims = embed_dims
        self.num_dn_queries = num_dn_queries
        self.label_noise_scale = label_noise_scale
        self.box_noise_scale = box_noise_scale
        self.fixed_num_groups = num_groups
        self.count_negatives = bool(count_negatives)
        self.label_embedding = nn.Embedding(num_classes, embed_dims)

    def num_groups(self, max_gt: int) -> int:
        """Number of groups for a batch whose largest image has ``max_gt`` boxes."""
        if self.fixed_num_groups is not None:
            return self.fixed_num_groups
        per_group = (2 if self.count_negatives else 1) * max(max_gt, 1)
        return max(1, self.num_dn_queries // per_group)

    def forward(self, gt_bboxes: Sequence[Tensor], gt_labels: Sequence[Tensor],
                num_matching: int) -> Optional[DenoisingQueries]:
        """Noised queries of a batch.

        Args:
            gt_bboxes: Per image (n_i, 4) normalised (cx, cy, w, h) boxes.
            gt_labels: Per image (n_i,) class indices.
            num_matching: Number of matching queries (for the attention mask).

        Returns:
            DenoisingQueries, or None when no image of the batch has a box.
        """
        max_gt = max((len(b) for b in gt_bboxes), default=0)
        if max_gt == 0:
            return None
        bs = len(gt_bboxes)
        device = gt_bboxes[0].device
        groups = self.num_groups(max_gt)
        # (bs, max_gt) padded ground truth and its validity
        boxes = gt_bboxes[0].new_zeros(bs, max_gt, 4)
        labels = torch.zeros(bs, max_gt, dtype=torch.long, device=device)
        valid = torch.zeros(bs, max_gt, dtype=torch.bool, device=device)
        for i, (b, l) in enumerate(zip(gt_bboxes, gt_labels)):
            boxes[i, :len(b)] = b
            labels[i, :len(b)] = l
            valid[i, :len(b)] = True
        # (bs, groups, 2 = positive/negative, max_gt, ...)
        shape = (bs, groups, 2, max_gt)
        boxes = boxes[:, None, None].expand(*shape, 4)
        labels = labels[:, None, None].expand(shape)
        valid = valid[:, None, None].expand(shape)

        labels = self._noised_labels(labels)
        box_query = inverse_sigmoid(self._noised_boxes(boxes), eps=1e-3)
        label_query = self.label_embedding(labels) * valid[..., None]
        box_query = box_query * valid[..., None]
        num_dn = groups * 2 * max_gt
        return DenoisingQueries(
            label_query=label_query.reshape(bs, num_dn, self.embed_dims),
            box_query=box_query.reshape(bs, num_dn, 4),
            attn_mask=denoising_attn_mask(groups, 2 * max_gt, num_matching, device),
            num_groups=groups,
            max_gt=max_gt)

    def _noised_labels(self, labels: Tensor) -> Tensor:
        if self.label_noise_scale <= 0:
            return labels
        flip = torch.rand(labels.shape, device=labels.device) < self.label_noise_scale * 0.5
        random = torch.randint_like(labels, 0, self.num_classes)
        return torch.where(flip, random, labels)

    def _noised_boxes(self, boxes: Tensor) -> Tensor:
        """(bs, groups, 2, max_gt, 4) normalised cxcywh -> noised, clamped to [0, 1]."""
        if self.box_noise_scale <= 0:
            return boxes
        corners = bbox_cxcywh_to_xyxy(boxes)
        half = boxes[..., 2:].repeat(*([1] * (boxes.dim() - 1)), 2) / 2  # (w, h, w, h) / 2
        magnitude = torch.rand_like(boxes)
        magnitude[:, :, 1] += 1.0  # negatives: at least one half-size away
        sign = torch.randint_like(boxes, 0, 2) * 2 - 1
        corners = corners + sign * magnitude * half * self.box_noise_scale
        return bbox_xyxy_to_cxcywh(corners.clamp(0.0, 1.0))


__all__ = ['DenoisingQueries', 'DenoisingQueryGenerator', 'denoising_attn_mask']
