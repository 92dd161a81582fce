"""The benchmark command runs end to end (smoke profile) and writes its table, JSON and figure."""

import json

import pytest

from benchmarks import __main__ as bench
from benchmarks import results


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "HERE", tmp_path)
    monkeypatch.setenv("GENCOURSE_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_benchmarks_smoke_run_writes_every_family_and_a_figure(results_dir):
    bench.main(["--profile", "smoke"])
    saved = json.loads((results_dir / "results-smoke.json").read_text())
    assert saved["profile"] == "smoke"
    models = saved["models"]
    for name in (
        "gan_dcgan_mnist",
        "gan_conditional_mnist",
        "vae_mnist",
        "flow_mnist",
        "latent_diffusion_mnist (DDIM 50)",
    ):
        assert name in models, f"{name} missing from {sorted(models)}"
    assert any(name.startswith("ddpm_mnist (DDPM") for name in models)
    for row in (models["gan_dcgan_mnist"], models["vae_mnist"], models["flow_mnist"]):
        assert row["fid"] >= 0 and 0 <= row["confident"] <= 1 and 1 <= row["classes_present"] <= 10
        assert row["sample_s_per_1000"] > 0
    assert models["vae_mnist"]["nll_nats"] > 0 and models["flow_mnist"]["bits_per_dim"] > 0
    toy = saved["toy2d"]
    assert {"ring8 GAN", "ring8 PacGAN4", "grid25 GAN", "grid25 PacGAN4"} <= set(toy)
    assert all(0 <= toy[k]["modes"] <= toy[k]["num_modes"] for k in ("ring8 GAN", "grid25 GAN"))
    for section in ("models", "toy2d"):
        assert saved["machine"][section]["torch"] and saved["date"][section]
    table = (results_dir / "results.md").read_text()
    assert "## Profile `smoke`" in table and "| gan_dcgan_mnist |" in table
    figure = results_dir / "samples-smoke.png"
    assert figure.stat().st_size > 10_000  # six panels of digits, not an empty canvas


def test_benchmarks_reject_an_unknown_family(results_dir, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--profile", "smoke", "--only", "gans"])
    assert "invalid choice: 'gans'" in capsys.readouterr().err


def test_table_cells_show_records_as_figures_not_python_reprs():
    seeds = [{"seed": 0, "modes": 17.0, "high_quality": 0.7983200073}, {"seed": 1, "modes": 25.0, "high_quality": 0.91}]
    assert results._fmt(seeds) == "seed 0, modes 17, high_quality 0.798; seed 1, modes 25, high_quality 0.91"
    assert results._fmt(None) == "-" and results._fmt(1234.5) == "1234" and results._fmt(0.123456, 2) == "0.12"


def test_the_slider_benchmark_times_every_move_of_every_slider(tmp_path):
    """One notebook with a one-parameter and a two-parameter slider: each is moved through every value and back."""
    import nbformat

    from benchmarks import sliders

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("from gencourse import plot"),
        nbformat.v4.new_markdown_cell("a slider"),
        nbformat.v4.new_code_cell("plot.explore(lambda ax, v: ax.plot([0, v]), [1, 2, 3], label='v')"),
        nbformat.v4.new_code_cell("plot.explore(lambda ax, a, b: ax.plot([a, b]), {'a': [1, 2], 'b': [3, 4, 5]})"),
    ]
    path = tmp_path / "99_demo.ipynb"
    nbformat.write(nb, path)
    assert sliders.has_sliders(nb)
    rows = sliders.time_notebook(path, "smoke")
    assert list(rows) == ["99_demo cell 2", "99_demo cell 3"]  # numbered as in the notebook, not the timed copy
    assert rows["99_demo cell 2"]["label"] == "v" and rows["99_demo cell 2"]["moves"] == 3
    assert rows["99_demo cell 3"]["label"] == "a, b" and rows["99_demo cell 3"]["moves"] == 2 + 3
    for row in rows.values():
        assert 0 <= row["median_ms"] <= row["slowest_ms"]
