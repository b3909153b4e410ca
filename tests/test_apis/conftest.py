import pytest

from tests.cotrain_helpers import prepare_demo_data


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory):
    """Tiny generated + converted demo data (shared by the whole session; read-only)."""
    return prepare_demo_data(str(tmp_path_factory.getbasetemp() / 'rscotr_demo_data'))
