import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same random state."""
    torch.manual_seed(0)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """An empty model cache for tests that train through load_or_train."""
    monkeypatch.setenv("GENCOURSE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
