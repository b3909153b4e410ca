"""Plot loss and metric curves from mmcv json training logs.

Training keys are ``<task>.<dataset>.<name>`` (e.g. ``cls.resisc.loss_cls``)
and evaluation keys ``<dataset>.<metric>`` (e.g. ``potsdam.mIoU``); ``--keys``
takes names or shell-style patterns. One subplot per task and dataset (and
one per evaluated dataset); one line per key and log file.

Examples::

    python tools/analysis/plot_logs.py work_dirs/x/20240101_000000.log.json --out loss.png
    python tools/analysis/plot_logs.py work_dirs/x/*.log.json \
        --keys 'cls.*.loss_cls' 'det.*.loss_bbox' 'resisc.accuracy_top-1' --out curves.png
"""
import argparse
import sys
from collections import OrderedDict
from typing import List, Optional


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Plot curves of mmcv json logs')
    parser.add_argument('logs', nargs='+', metavar='LOG_JSON', help='<work_dir>/*.log.json')
    parser.add_argument('--keys', nargs='+',
                        help='keys or patterns to plot (default: <task>.<dataset>.loss)')
    parser.add_argument('--out', required=True, help='PNG file to write')
    parser.add_argument('--legend', nargs='+', help='a name per log file')
    parser.add_argument('--title', help='figure title')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from rscotr.core.visualization.plots import (default_log_name, load_json_log, plot_log_curves,
                                                 resolve_log_keys)
    if args.legend and len(args.legend) != len(args.logs):
        print(f'error: {len(args.legend)} legend names for {len(args.logs)} logs',
              file=sys.stderr)
        return 2
    names = args.legend or [default_log_name(p) for p in args.logs]
    logs = OrderedDict()
    try:
        for name, path in zip(names, args.logs):
            logs[name] = load_json_log(path)
        records = [r for recs in logs.values() for r in recs]
        if not records:
            raise ValueError(f'no training records in {args.logs}')
        keys = resolve_log_keys(records, args.keys)
        if not keys:
            raise ValueError('no loss keys in the logs; choose --keys')
    except (OSError, ValueError, KeyError) as e:
        print(f'error: {str(e).strip(chr(34))}', file=sys.stderr)
        return 2
    panels = plot_log_curves(logs, keys, args.out, title=args.title)
    print(f'plotted {len(keys)} key(s) in {len(panels)} panel(s) ({", ".join(panels)})')
    print(f'saved to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
