import pytest
import torch

import gencourse
from gencourse.config import Profile


@pytest.mark.parametrize("name", ["smoke", "lecture", "full", " Lecture "])
def test_profile_reads_the_environment(monkeypatch, name):
    monkeypatch.setenv("GENCOURSE_PROFILE", name)
    assert gencourse.profile().name == name.strip().lower()


def test_profile_default_is_lecture_on_every_device(monkeypatch):
    monkeypatch.delenv("GENCOURSE_PROFILE", raising=False)
    assert gencourse.profile().name == "lecture"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a CUDA machine: still lecture
    assert gencourse.profile().name == "lecture"
    monkeypatch.setenv("GENCOURSE_PROFILE", "full")  # full only when asked for
    assert gencourse.profile().name == "full"


def test_invalid_profile_lists_the_valid_ones(monkeypatch):
    monkeypatch.setenv("GENCOURSE_PROFILE", "fast")
    with pytest.raises(ValueError, match="smoke, lecture, full"):
        gencourse.profile()
    with pytest.raises(ValueError, match="smoke, lecture, full"):
        Profile("medium")


def test_pick_returns_the_value_of_the_profile():
    values = dict(smoke=1, lecture=10, full=100)
    assert [Profile(n).pick(**values) for n in ("smoke", "lecture", "full")] == [1, 10, 100]
    with pytest.raises(TypeError):
        Profile("smoke").pick(smoke=1, lecture=2)  # every profile must be given a value


def test_device_override_and_errors(monkeypatch):
    monkeypatch.setenv("GENCOURSE_DEVICE", "cpu")
    assert gencourse.device() == torch.device("cpu")
    monkeypatch.setenv("GENCOURSE_DEVICE", "tpu")
    with pytest.raises(ValueError, match="cpu, cuda, mps"):
        gencourse.device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("GENCOURSE_DEVICE", "cuda")
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            gencourse.device()


def test_seed_everything_makes_runs_repeat():
    gencourse.seed_everything(123)
    a = (torch.randn(5), torch.nn.Linear(3, 3).weight.detach().clone())
    gencourse.seed_everything(123)
    b = (torch.randn(5), torch.nn.Linear(3, 3).weight.detach().clone())
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    gencourse.seed_everything(124)
    assert not torch.equal(torch.randn(5), a[0])


def test_describe_names_profile_and_device(monkeypatch):
    monkeypatch.setenv("GENCOURSE_PROFILE", "smoke")
    monkeypatch.setenv("GENCOURSE_DEVICE", "cpu")
    assert "profile: smoke" in gencourse.describe() and "device: cpu" in gencourse.describe()
