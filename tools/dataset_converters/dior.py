"""Convert DIOR horizontal-box XMLs to COCO json per split.

Writes OUT/annotations/dior_{train,val,test,trainval}.json whose
``file_name`` is relative to the DIOR root (``JPEGImages-trainval/00001.jpg``),
so data configs use ``img_prefix=<DIOR root>``.

Example::

    python tools/dataset_converters/dior.py data/DIOR -o data/DIOR/coco
"""
import argparse
import logging
import sys
from typing import List, Optional

from rscotr.datasets.converters import ConversionError, convert_dior


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert DIOR to COCO json files '
        '(OUT/annotations/dior_<split>.json)')
    parser.add_argument('raw_dir', metavar='RAW_DIR', help='the DIOR root')
    parser.add_argument('-o', '--out-dir', required=True, metavar='OUT')
    parser.add_argument('--drop-bad-boxes', action='store_true',
                        help='drop degenerate/zero-area boxes with a count '
                        'instead of failing')
    parser.add_argument('--verify-images', action='store_true',
                        help='fully decode every image (slow)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing OUT once done')
    parser.add_argument('--no-progress', action='store_true')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')
    try:
        summary = convert_dior(
            args.raw_dir,
            args.out_dir,
            drop_bad_boxes=args.drop_bad_boxes,
            verify_images=args.verify_images,
            overwrite=args.overwrite,
            show_progress=not args.no_progress)
    except ConversionError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(summary.format())
    return 0


if __name__ == '__main__':
    sys.exit(main())
