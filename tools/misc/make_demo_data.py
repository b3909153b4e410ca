"""Write small synthetic NWPU-RESISC45 / DIOR / Potsdam data sets in the
official raw layouts (for smoke tests of the converters and of training), and
with --extra two more in the standard formats (a classification set in class
folders, OUT_DIR/extra_cls, and a detection set in COCO json, OUT_DIR/extra_det).

Example::

    python tools/misc/make_demo_data.py data/demo --seed 0 --scale small
    python tools/misc/make_demo_data.py data/demo/raw --scale medium --extra
"""
import argparse
import sys
import time
from typing import List, Optional

from rscotr.datasets.demo_data import DATASETS, EXTRA_DATASETS, SCALES, make_demo_data


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write synthetic data in the official raw layouts under '
        'OUT_DIR/{NWPU-RESISC45,DIOR,Potsdam} (and with --extra, in the standard '
        'formats, OUT_DIR/{extra_cls,extra_det})')
    parser.add_argument('out_dir', metavar='OUT_DIR')
    parser.add_argument('--seed', type=int, default=0,
                        help='random seed (>= 0); same seed, same bytes')
    parser.add_argument('--scale', choices=list(SCALES), default='small')
    parser.add_argument('--datasets', nargs='*', choices=DATASETS + EXTRA_DATASETS,
                        default=list(DATASETS),
                        help='data sets to write (default: the three official ones)')
    parser.add_argument('--extra', action='store_true',
                        help='also write the extra data sets in the standard formats: '
                        'extra_cls (10 classes in class folders, split lists) and '
                        'extra_det (3 classes, COCO json per split)')
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
    parser.add_argument('--extra-cls-per-class', type=int,
                        help='images per extra_cls class (overrides scale)')
    parser.add_argument('--extra-det-images', type=int,
                        help='extra_det images (overrides scale)')
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
            potsdam_zipped=args.potsdam_zips,
            extra=args.extra,
            extra_cls_per_class=args.extra_cls_per_class,
            extra_det_images=args.extra_det_images)
    except (FileExistsError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(summary.format())
    print(f'done in {time.time() - start:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
