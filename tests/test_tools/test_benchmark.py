"""End-to-end test of tools/analysis/benchmark.py on the tiny demo config at tiny sizes."""
import json
import math
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
KEYS = ('multitask_inference_ratio', 'msda_fwd_speedup', 'msda_fwd_bwd_speedup',
        'msda_max_abs_diff', 'data_wait_fraction', 'cotrain_peak_rss_gb',
        'train_cls_median_s', 'train_det_median_s', 'train_seg_median_s', 'torch_threads',
        'cpu_cores', 'train_round_robin_fp32_mean_s', 'train_round_robin_bf16_mean_s',
        'train_det_bf16_median_s')


def test_benchmark_tiny(demo_data, tmp_path):
    demo = demo_data
    out = tmp_path / 'bench.json'
    # one process for every measurement: a fresh process per measurement (the
    # default) costs ~10 s of imports each
    subprocess.run(
        [sys.executable, 'tools/analysis/benchmark.py', 'configs/demo/rscotr_demo.py',
         '--repeat', '1', '--in-process', '--threads', '1', '--precision', 'fp32', 'bf16',
         '--sizes', 'cls=64,det=96,seg=64', '--batch', 'cls=2,det=1,seg=1',
         '--msda-levels', '8x8,4x4,2x2,1x1', '--msda-batch', '1', '--msda-heads', '2',
         '--msda-dims', '8', '--msda-points', '2', '--cotrain-steps', '4',
         '--demo-dir', osp.dirname(demo['prepared']), '--json', str(out)],
        cwd=REPO, check=True, timeout=120)
    results = json.loads(out.read_text())
    for key in KEYS:
        assert isinstance(results[key], (int, float)) and math.isfinite(results[key]), key
    assert results['msda_max_abs_diff'] <= 1e-4
    assert len(results['load_average']) == 3 and results['cpu_model']
    assert [s['loader'] for s in results['cotrain']['steps']] == [
        'resisc', 'dior', 'potsdam', 'resisc']
    assert 0 <= results['data_wait_fraction'] <= 1
    assert set(results['infer']['reference_sizes']) == {'cls', 'det', 'seg'}
    for precision in ('fp32', 'bf16'):
        steps = results['train'][precision]
        assert all(r['losses_finite'] and r['precision'] == precision for r in steps.values())
        assert results[f'train_round_robin_{precision}_mean_s'] == pytest.approx(
            sum(r['median_s'] for r in steps.values()) / 3)
