"""Cut ISPRS Potsdam tiles into image / index-label PNG patches.

RAW_DIR holds the official folders (2_Ortho_RGB/, 3_Ortho_IRRG/,
4_Ortho_RGBIR/, 5_Labels_all/, 5_Labels_all_noBoundary/) or their zips.

Example::

    python tools/dataset_converters/potsdam.py data/raw/Potsdam \
        -o data/potsdam --bands IRRG --clip-size 512 --stride 512
"""
import argparse
import sys
from typing import List, Optional

from rscotr.datasets.converters import convert_potsdam
from rscotr.datasets.converters.common import converter_parser, run_converter_cli
from rscotr.datasets.meta import POTSDAM_IMAGE_SOURCES


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = converter_parser(
        'Cut Potsdam into OUT/{img_dir,ann_dir}/{train,val}/<A>_<B>_<row>_<col>.png',
        'folder with the official Potsdam folders or zips')
    parser.add_argument('--bands', choices=list(POTSDAM_IMAGE_SOURCES), default='IRRG')
    parser.add_argument('--clip-size', type=int, default=512)
    parser.add_argument('--stride', type=int, default=512)
    parser.add_argument('--no-boundary', action='store_true',
                        help='use 5_Labels_all_noBoundary (boundaries -> 255)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    return run_converter_cli(convert_potsdam, args, bands=args.bands, clip_size=args.clip_size,
                             stride=args.stride, no_boundary=args.no_boundary)


if __name__ == '__main__':
    sys.exit(main())
