import time
import warnings

import pytest
import torch
from torch import nn

from gencourse import train
from gencourse.data import TensorLoader


def _regression(n=256):
    x = torch.randn(n, 3)
    return x, x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1


def _mse(model, batch):
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def test_fit_drives_the_loss_down_and_logs_every_step():
    loader = TensorLoader(*_regression(), batch_size=32)
    model = nn.Linear(3, 1)
    history = train.fit(model, _mse, loader, epochs=20, lr=0.05)
    assert len(history["loss"]) == 20 * len(loader) == history.meta["steps"]
    assert history.last("loss", 10) < 0.01 * history.first("loss", 5)
    assert not model.training


def test_fit_extra_values_clipping_and_callback():
    seen = []

    def loss_fn(model, batch):
        loss = _mse(model, batch)
        return loss, {"double": 2 * loss}

    history = train.fit(
        nn.Linear(3, 1),
        loss_fn,
        TensorLoader(*_regression(), batch_size=32),
        steps=25,
        clip_grad=1.0,
        every=10,
        callback=lambda step, m, h: seen.append(step),
    )
    assert history["double"] == pytest.approx([2 * v for v in history["loss"]])
    assert len(history["grad_norm"]) == 25
    assert seen == [10, 20, 24]


def test_fit_stops_on_steps_seconds_and_needs_a_budget():
    sampler = lambda: _regression(16)
    assert len(train.fit(nn.Linear(3, 1), _mse, sampler, steps=7)["loss"]) == 7
    start = time.perf_counter()
    history = train.fit(nn.Linear(3, 1), _mse, sampler, seconds=0.3)
    assert 0.3 <= time.perf_counter() - start < 2.0 and len(history["loss"]) > 1
    with pytest.raises(ValueError, match="epochs=, steps= or seconds="):
        train.fit(nn.Linear(3, 1), _mse, sampler)
    with pytest.raises(ValueError, match="no epochs"):
        train.fit(nn.Linear(3, 1), _mse, sampler, epochs=1)


def test_history_continues_across_fit_calls():
    loader = TensorLoader(*_regression(), batch_size=64)
    model = nn.Linear(3, 1)
    history = train.fit(model, _mse, loader, steps=5)
    train.fit(model, _mse, loader, steps=5, history=history)
    assert history.steps("loss") == list(range(10))


def test_nan_guard_stops_with_likely_causes():
    def exploding(model, batch):
        return _mse(model, batch) * float("inf")

    with pytest.raises(train.NonFiniteLossError, match="learning rate is too high") as info:
        train.fit(nn.Linear(3, 1), exploding, TensorLoader(*_regression(), batch_size=32), steps=10, lr=0.3)
    assert "step 0" in str(info.value) and "lr=0.3" in str(info.value)


def test_history_round_trips_and_reports_missing_keys():
    history = train.History()
    history.log(0, loss=torch.tensor(2.0), acc=0.5)
    history.log(1, loss=1.0)
    again = train.History.from_dict(history.to_dict())
    assert again["loss"] == [2.0, 1.0] and again.steps("acc") == [0]
    with pytest.raises(KeyError, match="loss, acc"):
        again["fid"]


def _build():
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))


def _train(model):
    return train.fit(model, _mse, TensorLoader(*_regression(), batch_size=32), steps=20)


def test_cache_round_trip_loads_the_same_weights(tmp_cache):
    calls = []

    def counting_train(model):
        calls.append(1)
        return _train(model)

    m1, h1 = train.load_or_train("toy", _build, counting_train, {"steps": 20}, profile="smoke")
    m2, h2 = train.load_or_train("toy", _build, counting_train, {"steps": 20}, profile="smoke")
    assert len(calls) == 1
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert h2["loss"] == h1["loss"] and "loaded_from" in h2.meta and h2.meta["train_seconds"] > 0
    train.load_or_train("toy", _build, counting_train, {"steps": 21}, profile="smoke")  # new config: retrain
    train.load_or_train("toy", _build, counting_train, {"steps": 20}, profile="lecture")  # new profile: retrain
    assert len(calls) == 3 and len(list(tmp_cache.iterdir())) == 3


def test_same_seed_gives_the_same_trained_model(tmp_cache):
    m1, _ = train.load_or_train("a", _build, _train, {}, seed=3, retrain=True)
    m2, _ = train.load_or_train("a", _build, _train, {}, seed=3, retrain=True)
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))


def test_corrupt_cache_file_is_reported_and_retrained(tmp_cache):
    train.load_or_train("toy", _build, _train, {}, profile="smoke")
    path = train.cache_path("toy", {}, "smoke")
    path.write_bytes(b"not a checkpoint")
    with pytest.warns(train.CacheWarning, match="cannot be used"):
        model, history = train.load_or_train("toy", _build, _train, {}, profile="smoke")
    assert "loaded_from" not in history.meta
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rewritten file loads cleanly
        train.load_or_train("toy", _build, _train, {}, profile="smoke")


def test_mismatched_architecture_is_reported_and_retrained(tmp_cache):
    train.load_or_train("toy", _build, _train, {}, profile="smoke")
    wider = lambda: nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1))
    with pytest.warns(train.CacheWarning, match="size mismatch|Missing|Unexpected"):
        model, _ = train.load_or_train("toy", wider, _train, {}, profile="smoke")
    assert model[0].out_features == 16


def test_train_must_return_a_history(tmp_cache):
    with pytest.raises(TypeError, match="must return a History"):
        train.load_or_train("bad", _build, lambda m: None, {})


def test_course_model_registry_refuses_duplicates():
    @train.course_model("test-only-model")
    def first():
        return None

    assert train.COURSE_MODELS["test-only-model"] is first
    with pytest.raises(ValueError, match="already registered"):
        train.course_model("test-only-model")(lambda: None)
    del train.COURSE_MODELS["test-only-model"]


def test_course_model_variants_expand_into_labelled_calls():
    seen = []

    @train.course_model("test-variants", variants=[{"beta": 0.5}, {"beta": 4.0}])
    def beta_model(beta=1.0):
        seen.append(beta)
        return beta

    try:
        calls = train.course_model_calls({"test-variants": beta_model})
        assert list(calls) == ["test-variants(beta=0.5)", "test-variants(beta=4.0)"]
        assert [call() for call in calls.values()] == [0.5, 4.0] == seen
    finally:
        del train.COURSE_MODELS["test-variants"]
