"""The contract every task head of RSCoTr follows."""
from abc import ABCMeta, abstractmethod
from typing import Dict, List, Optional, Sequence, Tuple

from mmcv.runner import BaseModule
from torch import Tensor

from ..layers.encoder import EncoderInputBuilder, EncoderInputs


class BaseTaskHead(BaseModule, metaclass=ABCMeta):
    """Base of the classification, detection and segmentation heads.

    A head receives the model's features as a dict ``feats`` with

    - ``'backbone'``: tuple of the 4 Swin stages, (bs, C_i, H/s, W/s) for
      strides 4/8/16/32;
    - ``'neck'``: tuple of the 4 neck levels, (bs, 256, H/s, W/s) for strides
      8/16/32/64;
    - ``'encoder'``: an :class:`~rscotr.models.layers.encoder.EncoderOutput`
      (only for heads with ``uses_encoder``), produced by the model from this
      head's own :meth:`encoder_inputs` and the shared encoder.

    Contract:

    - ``forward(feats, img_metas)``;
    - ``loss(...) -> dict``, declared float32 with
      :func:`~rscotr.core.mixed_precision.force_float32` (under autocast its
      half-precision inputs are cast up and autocast is off: matching costs
      and losses are computed in float32);
    - ``forward_train(feats, img_metas, **gt) -> dict`` (flat, trainable
      terms start with ``loss``);
    - ``simple_test(feats, img_metas, rescale) -> list`` of per-image results
      in the format of the upstream dataset's ``evaluate``;
    - ``simple_test_scores(feats, img_metas, rescale) -> list``: the scores
      behind those results (default: the results themselves);
    - :attr:`uses_encoder` and :attr:`uses_neck`: which shared parts the
      model must run for the head.

    Heads never receive modules as arguments.

    Args:
        encoder_inputs: Config of this head's :class:`EncoderInputBuilder`
            (positional encoding, number of levels, embed dims); None for a
            head that does not use the shared encoder.
    """

    #: Task key of the head in the model ('cls', 'det' or 'seg').
    task: str = ''

    def __init__(self, encoder_inputs: Optional[dict] = None, init_cfg=None):
        super().__init__(init_cfg)
        self.encoder_input_builder = (EncoderInputBuilder(**encoder_inputs)
                                      if encoder_inputs is not None else None)

    @property
    def uses_encoder(self) -> bool:
        """Whether the model must run the shared encoder for this head."""
        return self.encoder_input_builder is not None

    @property
    def uses_neck(self) -> bool:
        """Whether the model must run the neck for this head.

        True for a head that uses the shared encoder (its inputs are the neck
        levels); a head that reads ``feats['neck']`` itself declares
        ``uses_neck = True`` as a class attribute.
        """
        return self.uses_encoder

    def encoder_inputs(self, feats: Dict, img_metas: Sequence[dict]) -> EncoderInputs:
        """This head's inputs to the shared encoder, from the neck levels."""
        return self.encoder_input_builder(feats['neck'], img_metas)

    def batch_augment(self, img: Tensor, gt: Dict) -> Tuple[Tensor, Dict]:
        """Batch-level training augmentation applied to the input images before
        the backbone (e.g. Mixup/CutMix); identity by default."""
        return img, gt

    @abstractmethod
    def forward_train(self, feats: Dict, img_metas: List[dict], **gt) -> Dict[str, Tensor]:
        """Losses of a training batch (flat dict, trainable terms start with ``loss``)."""

    @abstractmethod
    def simple_test(self, feats: Dict, img_metas: List[dict], rescale: bool = True) -> list:
        """Per-image results in the upstream evaluation format."""

    def simple_test_scores(self, feats: Dict, img_metas: List[dict],
                           rescale: bool = True) -> list:
        """Per-image scores behind :meth:`simple_test`'s results, for callers that
        combine them (the scene API blends overlapping tiles).

        By default the results themselves, which carry their scores for
        classification (class probabilities) and detection (scored boxes).
        A head whose results are labels overrides it: the segmentation heads
        return (num_classes, H, W) score maps whose argmax is the label map.
        """
        return self.simple_test(feats, img_metas, rescale)
