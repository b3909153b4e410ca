"""Converters from the published data-set layouts to the prepared ones.

Each converter is a function returning a
:class:`~rscotr.datasets.converters.common.ConversionSummary`; the scripts
in ``tools/dataset_converters/`` are thin command-line wrappers.
"""
from .common import ConversionError, ConversionSummary, atomic_output_dir
from .dior import convert_dior
from .potsdam import convert_potsdam
from .resisc45 import convert_resisc45

__all__ = [
    'ConversionError', 'ConversionSummary', 'atomic_output_dir',
    'convert_dior', 'convert_potsdam', 'convert_resisc45'
]
