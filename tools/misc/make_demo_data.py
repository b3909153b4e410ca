"""Write small synthetic NWPU-RESISC45 / DIOR / Potsdam data sets in the
official raw layouts (for smoke tests of the converters and of training).

Example::

    python tools/misc/make_demo_data.py data/demo --seed 0 --scale small
"""
import argparse
import sys
import time
from typing import List, Optional

from rscotr.datasets.demo_data import DATASETS, SCALES, make_demo_data


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write synthetic data in the official raw layouts under '
        'OUT_DIR/{NWPU-RESISC45,DIOR,Potsdam}')
    parser.add_argument('out_dir', metavar='OUT_DIR')
    parser.add_argument('--seed', type=int, default=0,
                        help='random seed (>= 0); same seed, same bytes')
    parser.add_argument('--scale', choices=list(SCALES), default='small')
    parser.add_argument('--datasets', nargs='+', choices=DATASETS,
                        default=list(DATASETS))
    parser.add_argument('--resisc45-per-class', type=int,
                        help='images per RESISC45 class (overrides scale)')
    parser.add_argument('--dior-img-size', type=int, default=800,
                        help='DIOR image side (800 as released)')
    parser.add_argument('--dior-trainval', type=int,
                        help='DIOR train+val images (overrides scale)')
    parser.add_argument('--dior-test', type=int,
                        help='DIOR test images (overrides scale)')
    parser.add_argument('--potsdam-tile-size', type=int,
                        help='Potsdam tile side (overrides scale)')
    parser.add_argument('--potsdam-zips', action='store_true',
                        help='write Potsdam as the official zips')
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error('--seed must be >= 0')
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    start = time.time()
    try:
        summary = make_demo_data(
            args.out_dir,
            seed=args.seed,
            scale=args.scale,
            datasets=args.datasets,
            resisc45_per_class=args.resisc45_per_class,
            dior_img_size=args.dior_img_size,
            dior_trainval=args.dior_trainval,
            dior_test=args.dior_test,
            potsdam_tile_size=args.potsdam_tile_size,
            potsdam_zipped=args.potsdam_zips)
    except (FileExistsError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(summary.format())
    print(f'done in {time.time() - start:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
