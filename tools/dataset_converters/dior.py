"""Convert DIOR horizontal-box XMLs to COCO json per split.

Writes OUT/annotations/dior_{train,val,test,trainval}.json whose
``file_name`` is relative to the DIOR root (``JPEGImages-trainval/00001.jpg``),
so data configs use ``img_prefix=<DIOR root>``.

Example::

    python tools/dataset_converters/dior.py data/DIOR -o data/DIOR/coco
"""
import argparse
import sys
from typing import List, Optional

from rscotr.datasets.converters import convert_dior
from rscotr.datasets.converters.common import converter_parser, run_converter_cli


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = converter_parser(
        'Convert DIOR to COCO json files (OUT/annotations/dior_<split>.json)', 'the DIOR root')
    parser.add_argument('--drop-bad-boxes', action='store_true',
                        help='drop degenerate/zero-area boxes with a count instead of failing')
    parser.add_argument('--verify-images', action='store_true',
                        help='fully decode every image (slow)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    return run_converter_cli(convert_dior, args, drop_bad_boxes=args.drop_bad_boxes,
                             verify_images=args.verify_images)


if __name__ == '__main__':
    sys.exit(main())
