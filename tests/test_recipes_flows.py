"""The course's normalizing flows (gencourse.recipes.flows): their settings per profile, their names, and
that each recipe trains what its settings say and then loads from the cache."""

import math
from types import SimpleNamespace

import pytest
import torch
from recipe_checks import assert_frozen_and_documented

from gencourse import recipes
from gencourse.recipes import flows as R
from gencourse.train import History

# The values of every profile, as the notebooks and benchmarks have always trained them.
TOY = {
    "smoke": dict(num_layers=4, hidden=64, steps=30, batch_size=256, lr=2e-3, warmup=100),
    "lecture": dict(num_layers=8, hidden=64, steps=3000, batch_size=256, lr=2e-3, warmup=100),
    "full": dict(num_layers=8, hidden=64, steps=5000, batch_size=256, lr=2e-3, warmup=100),
}
MNIST = {
    "smoke": dict(
        flow_steps=(1, 1), hidden=(8, 8), blocks=(1, 1), n_train=512, batch_size=32, steps=8, lr=1e-3, warmup=2
    ),
    "lecture": dict(
        flow_steps=(4, 4), hidden=(32, 64), blocks=(1, 2), n_train=None, batch_size=64, steps=1800, lr=2e-3, warmup=100
    ),
    "full": dict(
        flow_steps=(4, 4),
        hidden=(64, 96),
        blocks=(1, 2),
        n_train=None,
        batch_size=64,
        steps=12000,
        lr=1e-3,
        warmup=500,
    ),
}


@pytest.mark.parametrize("profile", ["smoke", "lecture", "full"])
def test_settings_build_in_every_profile_are_frozen_and_show_every_field(monkeypatch, profile):
    monkeypatch.setenv("GENCOURSE_PROFILE", profile)
    toys = [R.toy_flow_settings(name) for name in ("moons", "checkerboard")]
    image = R.mnist_flow_settings()
    for settings in [*toys, image]:
        assert_frozen_and_documented(settings)
        assert settings.lr_schedule == "cosine"
    assert [s.data for s in toys] == ["moons", "checkerboard"]
    for settings in toys:
        assert {k: getattr(settings, k) for k in TOY[profile]} == TOY[profile]
    assert {k: getattr(image, k) for k in MNIST[profile]} == MNIST[profile]
    assert (image.alpha, image.clip_grad) == (1e-6, 100.0)


def test_an_unknown_toy_distribution_is_refused_before_any_training():
    with pytest.raises(ValueError, match="unknown toy2d distribution 'spiral'.*moons"):
        R.toy2d_flow("spiral")


def test_the_registered_names_and_calls():
    assert recipes.COURSE_MODELS["flow_toy2d"] is R.toy2d_flow
    assert recipes.COURSE_MODELS["flow_mnist"] is R.mnist_flow
    calls = recipes.course_model_calls({"flow_toy2d": R.toy2d_flow, "flow_mnist": R.mnist_flow})
    assert list(calls) == ["flow_toy2d(name='moons')", "flow_toy2d(name='checkerboard')", "flow_mnist"]


def test_course_models_train_in_the_smoke_profile_then_load_from_the_cache(tmp_cache, monkeypatch):
    monkeypatch.setenv("GENCOURSE_PROFILE", "smoke")
    flow, history = R.toy2d_flow("moons")
    assert history.meta["steps"] == 30 and "loaded_from" not in history.meta
    assert len(flow.layers) == 2 * R.toy_flow_settings("moons").num_layers
    points = torch.randn(16, 2)
    again, history_again = R.toy2d_flow("moons")
    assert "loaded_from" in history_again.meta
    with torch.no_grad():
        torch.testing.assert_close(again.log_prob(points), flow.log_prob(points))
    assert bool(again.layers[0].initialized), "ActNorm's data-dependent init must be restored, not redone"

    image_flow, image_history = R.mnist_flow()
    assert image_flow.shape == (1, 28, 28) and image_history.meta["steps"] == 8
    assert 0 < image_history.last("loss") < 9  # bits/dim: a few steps already beat 8 (uniform)
    assert image_history.meta["epochs"] == pytest.approx(8 / (512 // 32))
    assert "grad_norm" in image_history, "the gradient norm is clipped (and logged) as the settings say"


@pytest.mark.parametrize("profile", ["smoke", "lecture"])
@pytest.mark.parametrize("recipe", ["toy", "mnist"])
def test_the_learning_rate_warms_up_linearly_then_decays_as_a_cosine(monkeypatch, profile, recipe):
    """The schedule the flows were always trained with: lr * min(1, (s + 1) / W) * (1 + cos(pi s / S)) / 2,
    also when the warm-up W is longer than the run (the toy flows' 100 steps in a 30-step smoke run)."""
    monkeypatch.setenv("GENCOURSE_PROFILE", profile)
    seen = {}

    def fake_fit(model, loss_fn, data, *, steps, optimizer, scheduler, **kwargs):
        lrs = []
        for _ in range(steps):
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        seen["lrs"] = lrs
        return History()

    def fake_load_or_train(name, build, train, settings, **kwargs):
        seen["settings"] = settings
        model = build()
        return model, train(model)

    monkeypatch.setattr(R, "fit", fake_fit)
    monkeypatch.setattr(R, "load_or_train", fake_load_or_train)
    monkeypatch.setattr(R, "mnist", lambda train: SimpleNamespace(loader=lambda *args, **kwargs: [None] * 10))
    R.toy2d_flow("moons") if recipe == "toy" else R.mnist_flow()
    s = seen["settings"]
    expected = [
        s.lr * min(1.0, (t + 1) / s.warmup) * 0.5 * (1 + math.cos(math.pi * min(t, s.steps) / s.steps))
        for t in range(s.steps)
    ]
    assert seen["lrs"] == pytest.approx(expected, rel=1e-12, abs=0)
