"""Ahead-of-class pretraining: every registered course model trained once, then loaded from the cache."""

import pytest
import torch
from torch import nn

import gencourse.recipes
from gencourse import pretrain
from gencourse.config import profile
from gencourse.recipes import course_model
from gencourse.train import fit, load_or_train


@pytest.fixture
def registry(monkeypatch, tmp_path):
    """An empty model registry, an empty cache in tmp_path, the smoke profile."""
    monkeypatch.setattr(gencourse.recipes, "COURSE_MODELS", {})
    monkeypatch.setenv("GENCOURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GENCOURSE_PROFILE", "lecture")  # main(--profile smoke) must override it
    monkeypatch.delenv("GENCOURSE_RETRAIN", raising=False)
    return gencourse.recipes.COURSE_MODELS


def register_line(name="tiny_line"):
    """A one-weight regression y = 3x, registered and cached the way the family modules do it."""

    @course_model(name)
    def tiny_line():
        steps = profile().pick(smoke=150, lecture=300, full=3000)

        def train(model):
            return fit(
                model, lambda m, x: ((m(x) - 3 * x) ** 2).mean(), lambda: torch.randn(16, 1), steps=steps, lr=0.1
            )

        return load_or_train(name, lambda: nn.Linear(1, 1, bias=False), train, {"steps": steps})

    return tiny_line


def rows(output: str) -> dict[str, list[str]]:
    table = output.split("\n\n")[-1].splitlines()[2:]
    return {line.split()[0]: line.split()[1:] for line in table}


def test_trains_then_loads_from_the_cache_in_the_chosen_profile(registry, tmp_path, capsys):
    register_line()
    assert pretrain.main(["--profile", "smoke"]) == 0
    first = capsys.readouterr().out
    assert "[1/1] tiny_line" in first and "profile: smoke" in first
    assert rows(first)["tiny_line"][1] == "trained"
    (cached,) = (tmp_path / "cache").iterdir()
    assert cached.name.startswith("tiny_line-smoke-")

    assert pretrain.main(["--profile", "smoke"]) == 0
    second = rows(capsys.readouterr().out)
    assert second["tiny_line"][1] == "loaded"
    assert float(second["total"][0]) == pytest.approx(float(second["tiny_line"][0]), abs=0.11)

    model, history = registry["tiny_line"]()  # what the notebook gets: the trained model, from the cache
    assert "loaded_from" in history.meta and model.weight.item() == pytest.approx(3.0, abs=0.05)

    assert pretrain.main(["--profile", "smoke", "--retrain"]) == 0
    assert rows(capsys.readouterr().out)["tiny_line"][1] == "trained"


def test_only_runs_the_named_models_and_rejects_unknown_names(registry, capsys):
    register_line("line_a")
    register_line("line_b")
    assert pretrain.main(["--profile", "smoke", "--only", "line_b"]) == 0
    assert list(rows(capsys.readouterr().out)) == ["line_b", "total"]
    assert pretrain.main(["--profile", "smoke", "--only", "line_c"]) == 1
    assert "no course model named 'line_c'; registered: line_a, line_b" in capsys.readouterr().err


def test_only_accepts_the_labels_that_list_prints(registry, capsys):
    lines = {beta: register_line(f"curve_{beta}") for beta in (0.5, 4.0)}
    for name in [n for n in registry if n.startswith("curve_")]:
        del registry[name]  # only "curve" itself is a course model here

    @course_model("curve", variants=[{"beta": 0.5}, {"beta": 4.0}])
    def curve(beta=1.0):
        return lines[beta]()

    assert pretrain.main(["--list"]) == 0
    labels = [line.split("  ")[0] for line in capsys.readouterr().out.splitlines()]
    assert labels == ["curve(beta=0.5)", "curve(beta=4.0)"]
    assert pretrain.main(["--profile", "smoke", "--only", "curve(beta=4.0)"]) == 0
    assert list(rows(capsys.readouterr().out)) == ["curve(beta=4.0)", "total"]
    assert pretrain.main(["--profile", "smoke", "--only", "curve"]) == 0  # a name: every variant
    assert list(rows(capsys.readouterr().out)) == ["curve(beta=0.5)", "curve(beta=4.0)", "total"]


def test_list_names_each_model_and_its_function(registry, capsys):
    register_line()
    assert pretrain.main(["--list"]) == 0
    assert capsys.readouterr().out.strip() == f"tiny_line  ({__name__}.tiny_line)"


def test_a_failing_model_is_reported_and_the_others_still_train(registry, capsys):
    @course_model("broken")
    def broken():
        raise RuntimeError("out of memory")

    register_line()
    assert pretrain.main(["--profile", "smoke"]) == 1
    table = rows(capsys.readouterr().out)
    assert table["broken"][1:] == ["failed:", "RuntimeError:", "out", "of", "memory"]
    assert table["tiny_line"][1] == "trained"


def test_nothing_registered_is_an_error(registry, capsys):
    assert pretrain.main(["--profile", "smoke"]) == 1
    assert "no course models are registered" in capsys.readouterr().err
