import torch

from tests.tiny_rscotr import tool_main


def test_stack_versions_and_compiled_ops():
    import mmcls
    import mmcv
    import mmdet
    import mmseg
    import numpy
    from mmcv.utils import ext_loader
    assert mmcv.__version__ == '1.7.2'
    assert (mmdet.__version__, mmseg.__version__, mmcls.__version__) == ('2.28.2', '0.30.0',
                                                                          '0.25.0')
    assert numpy.__version__.startswith('1.')
    ext = ext_loader.load_ext('_ext', ['nms', 'ms_deform_attn_forward', 'roi_align_forward'])
    # a compiled op runs: NMS on CPU
    from mmcv.ops import nms
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype=torch.float)
    _, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    assert ext is not None


def test_registry_scopes():
    from rscotr.models import MODELS, build_model
    assert MODELS.scope == 'rscotr'
    assert MODELS.parent is not None and MODELS.parent.scope == 'mmcv'
    head = build_model(dict(type='SingleLevelClsHead', num_classes=3, in_channels=8))
    assert type(head).__name__ == 'SingleLevelClsHead'
    neck = build_model(dict(type='mmdet.ChannelMapper', in_channels=[4], out_channels=8))
    assert type(neck).__module__.startswith('mmdet.')
    loss = build_model(dict(type='mmcls.LabelSmoothLoss', label_smooth_val=0.1))
    assert type(loss).__module__.startswith('mmcls.')


def test_collect_env_cli(capsys):
    # in process (tests/test_tools/test_no_cuda_version_query.py runs it in a process)
    tool_main('tools/misc/collect_env.py')()
    out = capsys.readouterr().out
    for key in ('Python:', 'PyTorch:', 'MMCV:', 'MMCV ops: compiled', 'MMDetection: 2.28.2',
                'MMSegmentation: 0.30.0', 'MMClassification: 0.25.0', 'NumPy: 1.'):
        assert key in out, out
