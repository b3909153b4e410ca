"""Shared fixtures of the test suite."""
import copy
import os.path as osp

import pytest
import torch

#: The reference co-training config (the released model).
REFERENCE = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                     'configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py')

# One intra-op thread: the models here are tiny, and on a 2-core machine two
# threads contending with the data workers make steps many times slower.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory):
    """Tiny generated + converted demo data (shared by the whole session; read-only)."""
    from tests.cotrain_helpers import prepare_demo_data
    return prepare_demo_data(str(tmp_path_factory.getbasetemp() / 'rscotr_demo_data'))


@pytest.fixture(scope='session')
def reference_model():
    """``reference_model()``: a fresh copy of the model of :data:`REFERENCE` (the ImageNet
    Swin-T file left out, weights as built), which is built once per session."""
    from mmcv import Config

    from rscotr.models import build_model
    cfg = Config.fromfile(REFERENCE)
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = build_model(cfg.model)
    return lambda: copy.deepcopy(model)


@pytest.fixture
def deepcopy():
    return copy.deepcopy
