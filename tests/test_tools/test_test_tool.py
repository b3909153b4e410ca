"""End-to-end tests of tools/test.py, tools/dist_test.sh and the confusion-matrix plot
on a tiny three-task model and tiny prepared demo data."""
import glob
import json
import os
import os.path as osp
import pickle
import subprocess
import sys

import cv2
import numpy as np
import pytest

from ..tiny_rscotr import save_tiny_checkpoint, tool_main, write_tiny_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TEST_TOOL = 'tools/test.py'
NAMES = {'cls': 'resisc', 'det': 'dior', 'seg': 'potsdam'}
#: Keys every evaluation of a dataset must produce (README: Results).
REQUIRED = {
    'resisc': ['resisc.accuracy_top-1', 'resisc.accuracy_top-5'],
    'dior': ['dior.bbox_mAP', 'dior.bbox_mAP_50'],
    'potsdam': ['potsdam.mIoU', 'potsdam.mFscore', 'potsdam.aAcc', 'potsdam.IoU.building'],
}
SIZES = {'resisc': 45, 'dior': 4, 'potsdam': 8}  # the demo data's test sets




@pytest.fixture(scope='module')
def demo(demo_data, tmp_path_factory):
    root = str(tmp_path_factory.mktemp('test_tool'))
    config = write_tiny_config(osp.join(root, 'tiny.py'),
                               data_root=osp.dirname(demo_data['raw']))
    ckpt = save_tiny_checkpoint(config, osp.join(root, 'tiny.pth'))
    return dict(root=root, config=config, ckpt=ckpt, data_root=osp.dirname(demo_data['raw']))


def _run(demo, work_dir, *extra):
    return tool_main(TEST_TOOL)([demo['config'], demo['ckpt'], '--work-dir', str(work_dir),
                                 '--device', 'cpu', *extra])


def _metrics_file(work_dir):
    files = glob.glob(osp.join(str(work_dir), 'test_*.json'))
    assert len(files) == 1, files
    with open(files[0]) as f:
        return json.load(f)


@pytest.mark.parametrize('tasks', [['cls'], ['det'], ['seg'], ['cls', 'seg'],
                                   ['cls', 'det', 'seg']])
def test_writes_metrics_of_selected_datasets(demo, tmp_path, capsys, tasks):
    assert _run(demo, tmp_path, '--tasks', *tasks) == 0
    out = capsys.readouterr().out
    summary = _metrics_file(tmp_path)
    assert summary['config'] == osp.abspath(demo['config']) and summary['tasks'] == tasks
    assert summary['checkpoint'] == osp.abspath(demo['ckpt'])
    assert summary['config_dict']['model']['type'] == 'RSCoTr'
    assert list(summary['config_dict']['data']['test']) == ['resisc', 'dior', 'potsdam']
    selected = [NAMES[t] for t in tasks]
    assert list(summary['datasets']) == selected
    assert {n: d['images'] for n, d in summary['datasets'].items()} == {
        n: SIZES[n] for n in selected}
    metrics = summary['metrics']
    assert {key.split('.')[0] for key in metrics} == set(selected)
    for name in selected:
        for key in REQUIRED[name]:
            assert key in metrics, key
        assert f'{name} (' in out  # one table per dataset
    if 'cls' in tasks:
        assert 0 <= metrics['resisc.accuracy_top-1'] <= metrics['resisc.accuracy_top-5'] <= 100
    if 'seg' in tasks:
        assert 0 <= metrics['potsdam.mIoU'] <= 1
        assert 'per class:' in out and 'low_vegetation' in out


def test_out_pickle_and_show_dir(demo, tmp_path):
    out = tmp_path / 'raw' / 'results.pkl'
    show = tmp_path / 'show'
    assert _run(demo, tmp_path / 'work', '--out', str(out), '--show-dir', str(show)) == 0
    with open(out, 'rb') as f:
        results = pickle.load(f)
    assert list(results) == ['resisc', 'dior', 'potsdam']  # no dataset overwrote another
    assert {name: len(res) for name, res in results.items()} == SIZES
    assert results['resisc'][0].shape == (45, )
    assert len(results['dior'][0]) == 20 and results['dior'][0][0].shape[1] == 5
    assert results['potsdam'][0].shape == (80, 80)  # label maps of the 80 px patches, not
    # pre-evaluated statistics
    for name, size in SIZES.items():
        pictures = sorted(os.listdir(show / name))
        assert len(pictures) == size and all(p.endswith('.png') for p in pictures)
        img = cv2.imread(str(show / name / pictures[0]))
        assert img is not None and img.ndim == 3
    # metrics from label maps equal the pre-evaluated ones
    assert _run(demo, tmp_path / 'work2', '--tasks', 'seg') == 0
    with_maps = _metrics_file(tmp_path / 'work')['metrics']
    pre_eval = _metrics_file(tmp_path / 'work2')['metrics']
    assert with_maps['potsdam.mIoU'] == pytest.approx(pre_eval['potsdam.mIoU'])


def test_confusion_matrix_from_pickle_and_checkpoint(demo, tmp_path, capsys):
    pkl = tmp_path / 'results.pkl'
    assert _run(demo, tmp_path / 'work', '--tasks', 'cls', '--out', str(pkl)) == 0
    top1 = _metrics_file(tmp_path / 'work')['metrics']['resisc.accuracy_top-1']
    capsys.readouterr()
    plot = tool_main('tools/analysis/plot_confusion_matrix.py')
    for source, png in ((str(pkl), tmp_path / 'cm_pkl.png'), (demo['ckpt'], tmp_path / 'cm.png')):
        assert plot([demo['config'], source, '--out', str(png)]) == 0
        assert f'top-1 accuracy {top1:.2f}%' in capsys.readouterr().out
    # the same predictions, read from the pickle or made from the checkpoint: the same picture
    from_pkl, from_ckpt = (cv2.imread(str(tmp_path / name)) for name in ('cm_pkl.png', 'cm.png'))
    assert from_pkl is not None and from_pkl.std() > 0
    assert np.array_equal(from_pkl, from_ckpt)
    assert plot([demo['config'], str(pkl), '--out', str(tmp_path / 'x.png'),
                 '--dataset', 'nope']) == 2


def test_errors_exit_2(demo, tmp_path, capsys):
    cls_only = write_tiny_config(str(tmp_path / 'cls.py'), data_root=demo['data_root'],
                                 tasks=('cls', ))
    with open(cls_only, 'a') as f:  # a det test dataset, but no det head
        f.write('data["test"]["dior"] = dict(task="det", dataset=dict(type="DIORDataset", '
                'ann_file="x.json", pipeline=[]))\n')
    ckpt = save_tiny_checkpoint(cls_only, str(tmp_path / 'cls.pth'))
    main = tool_main(TEST_TOOL)
    capsys.readouterr()
    assert main([cls_only, ckpt, '--tasks', 'det', '--work-dir', str(tmp_path / 'w')]) == 2
    assert 'no head for task' in capsys.readouterr().err
    assert main([demo['config'], str(tmp_path / 'missing.pth')]) == 2
    assert f'{tmp_path / "missing.pth"}: no such file' in capsys.readouterr().err
    assert main([demo['config'], demo['ckpt'], '--out', str(tmp_path / 'r.json')]) == 2
    assert not (tmp_path / 'w').exists()
    # by default only the tasks with a head are evaluated (dior is skipped)
    assert main([cls_only, ckpt, '--work-dir', str(tmp_path / 'w2')]) == 0
    assert list(_metrics_file(tmp_path / 'w2')['datasets']) == ['resisc']
    no_seg = write_tiny_config(str(tmp_path / 'no_seg.py'), data_root=demo['data_root'],
                               tasks=('cls', 'seg'))
    with open(no_seg, 'a') as f:  # a seg head, but no seg test dataset
        f.write('data["test"].pop("potsdam")\n')
    ckpt = save_tiny_checkpoint(no_seg, str(tmp_path / 'no_seg.pth'))
    capsys.readouterr()
    assert main([no_seg, ckpt, '--tasks', 'seg']) == 2
    assert 'no test dataset' in capsys.readouterr().err


def test_distributed_gloo_matches_single_process(demo, tmp_path):
    """Two CPU processes (gloo) through tools/dist_test.sh give the single-process
    metrics and results of every dataset (the ranks' parts interleaved, padding dropped)."""
    assert _run(demo, tmp_path / 'single', '--out', str(tmp_path / 'single.pkl')) == 0
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHON=sys.executable,
               PORT=str(29500 + os.getpid() % 1000))
    proc = subprocess.run(
        ['bash', osp.join(REPO, 'tools/dist_test.sh'), demo['config'], demo['ckpt'], '2',
         '--tasks', 'cls', 'det', 'seg', '--device', 'cpu', '--work-dir', str(tmp_path / 'dist'),
         '--out', str(tmp_path / 'dist.pkl')],
        capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = _metrics_file(tmp_path / 'single')['metrics']
    dist = _metrics_file(tmp_path / 'dist')['metrics']
    assert set(dist) == set(single)
    assert {key.split('.')[0] for key in dist} == set(SIZES)
    for key, value in single.items():
        if isinstance(value, float):
            assert dist[key] == pytest.approx(value, abs=1e-6, nan_ok=True), key
    results = {}
    for name in ('single', 'dist'):
        with open(tmp_path / f'{name}.pkl', 'rb') as f:
            results[name] = pickle.load(f)
    assert {name: len(res) for name, res in results['dist'].items()} == SIZES
    assert np.all([r.shape == (80, 80) for r in results['dist']['potsdam']])
    for one, two in zip(results['single']['potsdam'], results['dist']['potsdam']):
        assert np.array_equal(one, two)
    for one, two in zip(results['single']['resisc'], results['dist']['resisc']):
        np.testing.assert_allclose(one, two, atol=1e-6)
    for one, two in zip(results['single']['dior'], results['dist']['dior']):
        for boxes_one, boxes_two in zip(one, two):
            np.testing.assert_allclose(boxes_one, boxes_two, atol=1e-4)
