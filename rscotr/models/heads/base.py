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

    Contract (STYLE.md): ``forward(feats, img_metas)``, ``loss(...) -> dict``,
    ``forward_train(feats, img_metas, **gt) -> dict`` and
    ``simple_test(feats, img_metas, rescale) -> list`` of per-image results
    in the format of the upstream dataset's ``evaluate``. Heads never receive
    modules as arguments.

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
