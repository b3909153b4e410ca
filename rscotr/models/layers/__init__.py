from .encoder import (EncoderInputBuilder, EncoderInputs, EncoderOutput,
                      SharedDeformableEncoder, default_encoder_layer)

__all__ = ['EncoderInputBuilder', 'EncoderInputs', 'EncoderOutput', 'SharedDeformableEncoder',
           'default_encoder_layer']
