"""Split NWPU-RESISC45 per class into train/val/test + mmcls lists.

Example::

    python tools/dataset_converters/resisc45.py data/raw/NWPU-RESISC45 \
        -o data/NWPU-RESISC45 --train-ratio 0.2 --val-ratio 0.1 --seed 0
"""
import argparse
import logging
import sys
from typing import List, Optional

from rscotr.datasets.converters import ConversionError, convert_resisc45


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Split NWPU-RESISC45 into OUT/{train,val,test}/<class>/ '
        'and write OUT/meta/{train,val,test,classes}.txt')
    parser.add_argument('raw_dir', metavar='RAW_DIR',
                        help='folder with the 45 class folders')
    parser.add_argument('-o', '--out-dir', required=True, metavar='OUT')
    parser.add_argument('--train-ratio', type=float, default=0.2)
    parser.add_argument('--val-ratio', type=float, default=0.1)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--link', action='store_true',
                        help='hard-link the images instead of copying')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing OUT once done')
    parser.add_argument('--no-progress', action='store_true')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')
    try:
        summary = convert_resisc45(
            args.raw_dir,
            args.out_dir,
            train_ratio=args.train_ratio,
            val_ratio=args.val_ratio,
            seed=args.seed,
            link=args.link,
            overwrite=args.overwrite,
            show_progress=not args.no_progress)
    except ConversionError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(summary.format())
    return 0


if __name__ == '__main__':
    sys.exit(main())
