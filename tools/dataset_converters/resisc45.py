"""Split NWPU-RESISC45 per class into train/val/test + mmcls lists.

Example::

    python tools/dataset_converters/resisc45.py data/raw/NWPU-RESISC45 \
        -o data/NWPU-RESISC45 --train-ratio 0.2 --val-ratio 0.1 --seed 0
    # a subset of the class folders (labels keep their official indices)
    python tools/dataset_converters/resisc45.py data/raw/resisc45_subset \
        -o data/resisc45_subset --allow-missing-classes
"""
import argparse
import sys
from typing import List, Optional

from rscotr.datasets.converters import convert_resisc45
from rscotr.datasets.converters.common import converter_parser, run_converter_cli


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = converter_parser(
        'Split NWPU-RESISC45 into OUT/{train,val,test}/<class>/ and write '
        'OUT/meta/{train,val,test,classes}.txt', 'folder with the 45 class folders')
    parser.add_argument('--train-ratio', type=float, default=0.2)
    parser.add_argument('--val-ratio', type=float, default=0.1)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--link', action='store_true',
                        help='hard-link the images instead of copying')
    parser.add_argument('--allow-missing-classes', action='store_true',
                        help='convert the class folders present (a subset of the 45), keeping '
                        'the official label indices; the summary lists the missing classes')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    return run_converter_cli(convert_resisc45, args, train_ratio=args.train_ratio,
                             val_ratio=args.val_ratio, seed=args.seed, link=args.link,
                             allow_missing_classes=args.allow_missing_classes)


if __name__ == '__main__':
    sys.exit(main())
