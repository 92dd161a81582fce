"""``python -m benchmarks.gpu_check``, the one command for the first GPU, runs end to end on the CPU (``--cpu``,
tiny steps and batches) and writes the JSON the results page renders."""

import json
import subprocess
import types

import pytest
import torch

from benchmarks import gpu_check, report


@pytest.fixture
def out(tmp_path, monkeypatch):
    monkeypatch.setenv("GENCOURSE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "gpu_check.json"


def test_the_check_runs_on_the_cpu_and_writes_its_json(out):
    args = ["--cpu", "--steps", "2", "--batch", "4", "--no-notebooks", "--only", "03", "--out", str(out)]
    assert gpu_check.main(args) == 0
    result = json.loads(out.read_text())
    assert result["device"] == "cpu" and result["torch"] == str(torch.__version__)
    assert set(result["models"]) == {"gan_dcgan_mnist"}
    for row in result["models"].values():
        for profile in gpu_check.PROFILES:
            cell = row[profile]
            assert cell["steps_timed"] == 2 and cell["batch_size"] == 4 and cell["steps_per_second"] > 0
            assert cell["profile_steps"] > 2  # the profile's own number of steps, for the estimate on a GPU
    assert result["determinism"]["gan_dcgan_mnist"]["equal"], "the same seed must give the same weights"
    assert result["notebooks"] == {"ran": False, "note": "skipped: --no-notebooks"}
    page = "\n".join(report.gpu_check_section(result))
    assert "gan_dcgan_mnist" in page and "cpu" in page


def test_without_a_gpu_it_says_how_to_test_it(monkeypatch, capsys, out):
    monkeypatch.delenv("GENCOURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--out", str(out)]) == 2
    assert "use --cpu" in capsys.readouterr().err and not out.exists()


def test_the_notebooks_are_skipped_with_the_reason_when_nbval_is_missing(monkeypatch):
    real = gpu_check.importlib.util.find_spec
    monkeypatch.setattr(gpu_check.importlib.util, "find_spec", lambda name: None if name == "nbval" else real(name))
    assert gpu_check.notebooks(10) == {"ran": False, "note": "skipped: nbval not installed (pip install -e '.[test]')"}


def test_the_notebook_run_is_summarised_per_notebook(monkeypatch):
    stdout = (
        "PASSED notebooks/01_intro.ipynb::Cell 0\nFAILED notebooks/03_gan_images.ipynb::Cell 7\n"
        "PASSED notebooks/03_gan_images.ipynb::Cell 1\n1 failed, 2 passed in 80.0s"
    )
    monkeypatch.setattr(
        gpu_check.subprocess, "run", lambda *a, **k: types.SimpleNamespace(returncode=1, stdout=stdout, stderr="")
    )
    result = gpu_check.notebooks(10)
    assert result["ran"] and not result["passed"] and result["failed_notebooks"] == ["notebooks/03_gan_images.ipynb"]
    assert result["cells_passed"] == 2 and result["summary"] == "1 failed, 2 passed in 80.0s"

    def too_long(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], 10)

    monkeypatch.setattr(gpu_check.subprocess, "run", too_long)
    assert gpu_check.notebooks(10) == {"ran": True, "passed": False, "note": "stopped after 10 s"}
