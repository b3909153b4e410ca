"""End-to-end test of tools/misc/demo_predictions.py on a tiny three-task model and tiny
prepared demo data."""
import json
import os
import runpy

import cv2
import pytest

from ..tiny_rscotr import save_tiny_checkpoint, tool_main, write_tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = 'tools/misc/demo_predictions.py'


@pytest.fixture(scope='module')
def demo(demo_data, tmp_path_factory):
    root = str(tmp_path_factory.mktemp('demo_predictions'))
    config = write_tiny_config(os.path.join(root, 'tiny.py'),
                               data_root=os.path.dirname(demo_data['raw']))
    ckpt = save_tiny_checkpoint(config, os.path.join(root, 'tiny.pth'))
    return dict(root=root, config=config, ckpt=ckpt, data_root=os.path.dirname(demo_data['raw']))


def test_one_picture_of_the_three_tasks(demo, tmp_path, capsys):
    out = tmp_path / 'pics' / 'predictions.png'
    metrics = tmp_path / 'metrics.json'
    metrics.write_text(json.dumps({'metrics': {'resisc.accuracy_top-1': 93.25,
                                               'dior.bbox_mAP': 0.61, 'potsdam.mIoU': 0.8}}))
    main = tool_main(TOOL)
    assert main([demo['config'], demo['ckpt'], '--out', str(out), '--panel', '96',
                 '--metrics', str(metrics), '--min-objects', '2']) == 0
    assert str(out) in capsys.readouterr().out
    img = cv2.imread(str(out))
    # 3 columns of 96 px with 8 px gaps; a title and two rows of captioned panels
    assert img.shape[1] == 3 * (96 + 8) + 8
    assert img.shape[0] > 2 * 96 + 2 * 8
    assert os.listdir(out.parent) == ['predictions.png']  # written atomically: no temp files
    # the second row holds the Potsdam patch, the prediction and the ground truth: not blank
    row = img[-96 - 8:-8]
    assert all(row[:, 8 + c * 104:8 + c * 104 + 96].std() > 1 for c in range(3))

    untitled = tmp_path / 'untitled.png'
    assert main([demo['config'], demo['ckpt'], '--out', str(untitled), '--panel', '96']) == 0
    assert cv2.imread(str(untitled)).shape[0] < img.shape[0]  # no title line


def test_the_title_names_the_test_figures(tmp_path):
    title_of = runpy.run_path(os.path.join(REPO, TOOL), run_name='tool')['title_of']
    assert title_of(None) is None
    metrics = tmp_path / 'metrics.json'
    metrics.write_text(json.dumps({'metrics': {'resisc.accuracy_top-1': 93.25,
                                               'dior.bbox_mAP': 0.6125,
                                               'potsdam.mIoU': 0.80004}}))
    assert title_of(str(metrics)) == ('test data: RESISC45 top-1 93.2 %, DIOR mAP@0.5 0.613, '
                                      'Potsdam mIoU 0.800')
    metrics.write_text(json.dumps({'metrics': {'dior.bbox_mAP': 0.5}}))
    assert title_of(str(metrics)) == 'test data: DIOR mAP@0.5 0.500'


def test_bad_inputs_exit_2(demo, tmp_path, capsys):
    main = tool_main(TOOL)
    assert main([demo['config'], str(tmp_path / 'missing.pth'), '--out',
                 str(tmp_path / 'x.png')]) == 2
    assert 'does not exist' in capsys.readouterr().err
    no_val = write_tiny_config(str(tmp_path / 'no_val.py'), data_root=demo['data_root'],
                               extra="data['val'] = {k: v for k, v in data['val'].items() "
                                     "if k != 'dior'}\n")
    assert main([no_val, demo['ckpt'], '--out', str(tmp_path / 'x.png')]) == 2
    assert "no dataset for the task(s) ['det']" in capsys.readouterr().err
    assert not (tmp_path / 'x.png').exists()
