"""Time the checks a training run makes before it builds anything.

``tools/train.py`` reads the config (:func:`rscotr.utils.config.load_config`,
which parses the file and its bases and checks ``--cfg-options``) and checks
every setting, data file and checkpoint file
(:func:`rscotr.apis.checks.check_config`); :func:`rscotr.apis.train_model`
checks again with the built model. This script times those three calls on a
config and its data, the second and later repetitions (imports excluded, as
the run has paid for them already), and prints the median and the maximum.

Example (after ``make demo`` or the first two steps of ``tools/misc/run_demo.sh``)::

    python tools/analysis/startup_checks.py configs/demo/rscotr_demo.py --repeat 5
"""
import argparse
import statistics
import sys
import time
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description='Time the start-of-run checks')
    parser.add_argument('config', help='training config (its data must exist)')
    parser.add_argument('--repeat', type=int, default=5, help='timed repetitions (default 5)')
    args = parser.parse_args(argv)

    from rscotr.apis.checks import ConfigError, check_config
    from rscotr.models import build_model
    from rscotr.utils.config import load_config

    def once():
        times = {}
        start = time.perf_counter()
        cfg = load_config(args.config)
        times['load_config'] = time.perf_counter() - start
        start = time.perf_counter()
        check_config(cfg)  # tools/train.py, before anything is built
        times['check_config'] = time.perf_counter() - start
        model = build_model(cfg.model)
        start = time.perf_counter()
        check_config(cfg, model)  # train_model, with the built model
        times['check_config(model)'] = time.perf_counter() - start
        times['total'] = sum(times.values())
        return times

    try:
        once()  # imports and registries
    except ConfigError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    runs = [once() for _ in range(args.repeat)]
    print(f'{args.config}: start-of-run checks, {args.repeat} runs (seconds)')
    for key in runs[0]:
        values = [run[key] for run in runs]
        print(f'  {key:22s} median {statistics.median(values):.3f}  max {max(values):.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
