from .encoder import (EncoderInputBuilder, EncoderInputs, EncoderOutput,
                      SharedDeformableEncoder, default_encoder_layer)

__all__ = ['EncoderInputBuilder', 'EncoderInputs', 'EncoderOutput', 'SharedDeformableEncoder',
           'default_encoder_layer']
from .dino_decoder import DINODecoder, default_decoder_layer  # noqa: F401
from .pixel_decoder import SharedEncoderPixelDecoder  # noqa: F401
