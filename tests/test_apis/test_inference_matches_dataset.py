"""Inference on one image gives what the test-dataset path gives on that image.

The test-dataset path is the one of ``tools/test.py``: the task's test dataset
built from ``data.test`` with its test pipeline (``LoadImageFromFile``: BGR,
then ``Normalize(to_rgb=True)``), a data-parallel model and
:func:`multitask_single_gpu_test`. The inference path reads the file as RGB
(:func:`read_image`), converts it back for the pipeline, runs the model
without a loader and formats the results. Both must give the same class
scores, boxes, labels and label maps, within float tolerance, for the three
tasks, through the API (:func:`inference_multitask`) and through
``tools/inference_one_img.py``. The expected values come from the dataset
path only.

The model is the tiny three-task RSCoTr with initialised (untrained) heads;
its outputs still depend on every pixel and colour, which
:func:`test_a_colour_swap_or_another_normalisation_is_detected` checks: the
same comparison fails for an input with red and blue swapped, and for a
pipeline whose normalisation differs.
"""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
from mmcv import Config
from mmcv.parallel import MMDataParallel

from rscotr.apis import multitask_single_gpu_test
from rscotr.apis.inference import inference_multitask, init_model
from rscotr.datasets import build_task_loaders

from ..tiny_rscotr import (NORM, save_tiny_checkpoint, tiny_data_cfg, tiny_test_pipelines,
                           tool_main, write_tiny_config)

#: Images compared per dataset.
IMAGES = 2
#: Float tolerance of scores and box corners (pixels); a batch of 16 and a
#: batch of 1 may differ in the last bits.
SCORE_TOL = 1e-5
BOX_TOL = 1e-3
SEG_CLASSES = 5


@pytest.fixture(scope='module')
def tiny(demo_data, tmp_path_factory):
    """Config, checkpoint, model and the dataset path's results on the first images."""
    root = tmp_path_factory.mktemp('inference_vs_dataset')
    # det 96 px from 128 px images and seg 64 px from 80 px patches: both
    # paths rescale results to the original size
    # RESISC45 val, DIOR test, Potsdam val of the session's demo data
    data = dict(test=tiny_data_cfg(osp.dirname(demo_data['raw']), resisc_split='val',
                                   batch=dict(det=2, seg=2))['test'])
    config = write_tiny_config(str(root / 'tiny.py'), extra=f'data = {data!r}\n')
    ckpt = save_tiny_checkpoint(config, str(root / 'tiny.pth'), seed=3)
    model = init_model(config, ckpt)
    loaders = build_task_loaders(Config.fromfile(config).data.test, train=False)
    for loader in loaders:
        assert len(loader.dataset) >= IMAGES, loader.name
    results = multitask_single_gpu_test(MMDataParallel(model, device_ids=None), loaders,
                                        pre_eval=False)
    return dict(config=config, ckpt=ckpt, model=model, results=results, data=data,
                datasets={loader.task: loader.dataset for loader in loaders},
                names={loader.task: loader.name for loader in loaders})


def _image_path(dataset, idx):
    """The file of image ``idx``, from the dataset's own records."""
    if hasattr(dataset, 'img_infos'):  # mmseg
        return osp.join(dataset.img_dir, dataset.img_infos[idx]['filename'])
    info = dataset.data_infos[idx]
    if 'img_info' in info:  # mmcls
        return osp.join(info['img_prefix'], info['img_info']['filename'])
    return osp.join(dataset.img_prefix, info['filename'])  # mmdet


def _expected(tiny, task, idx):
    """The dataset path's result of image ``idx`` in the inference output format."""
    dataset = tiny['datasets'][task]
    raw = tiny['results'][tiny['names'][task]][idx]
    if task == 'cls':
        scores = np.asarray(raw, np.float64)
        order = np.argsort(-scores, kind='stable')[:5]
        return [(dataset.CLASSES[i], float(scores[i])) for i in order]
    if task == 'det':
        return sorted(((dataset.CLASSES[label], *map(float, box))
                       for label, boxes in enumerate(raw) for box in boxes),
                      key=lambda d: -d[-1])
    # labels beyond the classes (released scheme 2) are reported as 255
    return np.where(raw < SEG_CLASSES, raw, 255).astype(np.uint8)


def _as_tuples(dets):
    return [(d['label'], *d['bbox'], d['score']) for d in dets]


def _check_cls(got, expected):
    assert [name for name, _ in got] == [name for name, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected],
                               rtol=0, atol=SCORE_TOL)


def _check_det(got, expected):
    assert len(got) == len(expected) == 20  # max_per_img, every score above -1
    assert [d[0] for d in got] == [d[0] for d in expected]
    got, expected = np.array([d[1:] for d in got]), np.array([d[1:] for d in expected])
    np.testing.assert_allclose(got[:, :4], expected[:, :4], rtol=0, atol=BOX_TOL)
    np.testing.assert_allclose(got[:, 4], expected[:, 4], rtol=0, atol=SCORE_TOL)


def _check_seg(got, expected):
    assert got.shape == expected.shape and got.dtype == np.uint8
    assert np.array_equal(got, expected)


CHECKS = dict(cls=_check_cls, det=_check_det, seg=_check_seg)


def _api(model, image, task):
    res = inference_multitask(model, image, tasks=[task], score_thr=-1.0)[task]
    if task == 'cls':
        return res['top5']
    if task == 'det':
        return _as_tuples(res)
    return res['label_map']


@pytest.mark.parametrize('task', ['cls', 'det', 'seg'])
def test_the_api_gives_the_dataset_results(tiny, task):
    dataset = tiny['datasets'][task]
    for idx in range(IMAGES):
        expected = _expected(tiny, task, idx)
        CHECKS[task](_api(tiny['model'], _image_path(dataset, idx), task), expected)
    if task == 'cls':  # the scores are not all alike: the tolerance separates them
        scores = np.asarray(tiny['results']['resisc'][0])
        assert scores.max() - scores.min() > 100 * SCORE_TOL
    if task == 'seg':  # a map of more than one label
        assert len(np.unique(_expected(tiny, task, 0))) > 1


def test_the_tool_gives_the_dataset_results(tiny, tmp_path, capsys):
    """``tools/inference_one_img.py`` on one image of each dataset, all three tasks."""
    main = tool_main('tools/inference_one_img.py')
    for task in ('cls', 'det', 'seg'):
        image = _image_path(tiny['datasets'][task], 0)
        out = tmp_path / task
        assert main([tiny['config'], tiny['ckpt'], image, '--tasks', task, '--score-thr', '-1',
                     '--out-dir', str(out)]) == 0
        stem = osp.splitext(osp.basename(image))[0]
        with open(out / f'{stem}_result.json') as f:
            summary = json.load(f)
        expected = _expected(tiny, task, 0)
        if task == 'cls':
            _check_cls([(d['label'], d['score']) for d in summary['cls']['top5']], expected)
        elif task == 'det':
            _check_det(_as_tuples(summary['det']), expected)
        else:
            _check_seg(cv2.imread(summary['seg']['label_map'], cv2.IMREAD_UNCHANGED), expected)
    capsys.readouterr()


def _other_norm_config(tiny, tmp_path):
    """The same model with inference pipelines that normalise without BGR -> RGB."""
    norm = dict(NORM, to_rgb=False)
    pipelines = tiny_test_pipelines()
    for pipeline in pipelines.values():
        for step in pipeline:
            for t in [step] + list(step.get('transforms', [])):
                if t['type'] == 'Normalize':
                    t.update(norm)
    return write_tiny_config(str(tmp_path / 'other_norm.py'),
                             extra=f'inference = dict(pipelines={pipelines!r})\n'
                                   f'data = {tiny["data"]!r}\n')


@pytest.mark.parametrize('task', ['cls', 'det', 'seg'])
def test_a_colour_swap_or_another_normalisation_is_detected(tiny, task, tmp_path):
    """The comparison above is sharp enough to see a red/blue swap or a wrong
    normalisation of the input."""
    image = _image_path(tiny['datasets'][task], 0)
    expected = _expected(tiny, task, 0)
    swapped = cv2.imread(image)  # BGR: passed as an RGB array, red and blue are swapped
    assert not np.array_equal(swapped, swapped[..., ::-1])
    with pytest.raises(AssertionError):
        CHECKS[task](_api(tiny['model'], swapped, task), expected)
    other = init_model(_other_norm_config(tiny, tmp_path), tiny['ckpt'])
    with pytest.raises(AssertionError):
        CHECKS[task](_api(other, image, task), expected)
