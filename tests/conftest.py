"""Shared fixtures of the test suite."""
import copy

import pytest
import torch

# One intra-op thread: the models here are tiny, and on a 2-core machine two
# threads contending with the data workers make steps many times slower.
torch.set_num_threads(1)


def tiny_backbone(embed_dims: int = 16) -> dict:
    """A 4-stage Swin small enough for CPU tests (stage channels d, 2d, 4d, 8d)."""
    return dict(type='mmdet.SwinTransformer', embed_dims=embed_dims, depths=(1, 1, 1, 1),
                num_heads=(1, 2, 2, 4), window_size=4, mlp_ratio=2, drop_path_rate=0.0,
                patch_norm=True, out_indices=(0, 1, 2, 3), convert_weights=False)


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory):
    """Tiny generated + converted demo data (shared by the whole session; read-only)."""
    from tests.cotrain_helpers import prepare_demo_data
    return prepare_demo_data(str(tmp_path_factory.getbasetemp() / 'rscotr_demo_data'))


@pytest.fixture
def deepcopy():
    return copy.deepcopy
