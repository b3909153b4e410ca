"""Cut ISPRS Potsdam tiles into image / index-label PNG patches.

RAW_DIR holds the official folders (2_Ortho_RGB/, 3_Ortho_IRRG/,
4_Ortho_RGBIR/, 5_Labels_all/, 5_Labels_all_noBoundary/) or their zips.

Example::

    python tools/dataset_converters/potsdam.py data/raw/Potsdam \
        -o data/potsdam --bands IRRG --clip-size 512 --stride 512
"""
import argparse
import logging
import sys
from typing import List, Optional

from rscotr.datasets.converters import ConversionError, convert_potsdam
from rscotr.datasets.meta import POTSDAM_IMAGE_SOURCES


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Cut Potsdam into OUT/{img_dir,ann_dir}/{train,val}/'
        '<A>_<B>_<row>_<col>.png')
    parser.add_argument('raw_dir', metavar='RAW_DIR')
    parser.add_argument('-o', '--out-dir', required=True, metavar='OUT')
    parser.add_argument('--bands', choices=list(POTSDAM_IMAGE_SOURCES),
                        default='IRRG')
    parser.add_argument('--clip-size', type=int, default=512)
    parser.add_argument('--stride', type=int, default=512)
    parser.add_argument('--no-boundary', action='store_true',
                        help='use 5_Labels_all_noBoundary (boundaries -> '
                        '255)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing OUT once done')
    parser.add_argument('--no-progress', action='store_true')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')
    try:
        summary = convert_potsdam(
            args.raw_dir,
            args.out_dir,
            bands=args.bands,
            clip_size=args.clip_size,
            stride=args.stride,
            no_boundary=args.no_boundary,
            overwrite=args.overwrite,
            show_progress=not args.no_progress)
    except ConversionError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(summary.format())
    return 0


if __name__ == '__main__':
    sys.exit(main())
