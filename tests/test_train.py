import dataclasses
import os
import threading
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
    assert 0 < history.meta["eval_seconds"] <= history.meta["train_seconds"]


def test_final_callback_runs_once_when_the_last_step_is_a_callback_step():
    seen = []
    train.fit(
        nn.Linear(3, 1), _mse, lambda: _regression(16), steps=21, every=10, callback=lambda s, m, h: seen.append(s)
    )
    assert seen == [10, 20]


def test_callback_time_is_counted_as_evaluation():
    def slow(step, model, history):
        time.sleep(0.05)

    history = train.fit(nn.Linear(3, 1), _mse, lambda: _regression(16), steps=10, every=5, callback=slow)
    assert history.meta["eval_seconds"] >= 0.1  # steps 5 and 9
    assert history.meta["train_seconds"] >= history.meta["eval_seconds"]


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


@pytest.mark.parametrize("shape", ["constant", "linear", "cosine"])
def test_lr_schedule_follows_its_factor(shape):
    optimizer = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.5)
    schedule = train.lr_schedule(optimizer, 50, shape, warmup=10)
    seen = []
    for _ in range(50):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    expected = [0.5 * train.lr_factor(s, 50, shape, 10) for s in range(50)]
    assert seen == pytest.approx(expected, rel=1e-12)
    assert seen[0] == pytest.approx(0.5 / 10 * (1 if shape == "constant" else train.lr_factor(0, 50, shape)))
    assert max(seen) <= 0.5 + 1e-12


def test_lr_factor_shapes():
    assert [train.lr_factor(s, 4, "linear") for s in range(4)] == [1.0, 0.75, 0.5, 0.25]
    assert train.lr_factor(0, 100, "cosine") == 1.0 and train.lr_factor(50, 100, "cosine") == pytest.approx(0.5)
    assert train.lr_factor(100, 100, "cosine") == pytest.approx(0.0, abs=1e-12)
    assert train.lr_factor(4, 100, "constant", warmup=10) == pytest.approx(0.5)


def test_lr_schedule_one_cycle_warms_up_then_decays_to_a_thousandth():
    optimizer = torch.optim.Adam(nn.Linear(2, 1).parameters(), lr=1e-2)
    schedule = train.lr_schedule(optimizer, 200, "one_cycle", warmup=0.05)
    seen = []
    for _ in range(200):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert seen[0] == pytest.approx(1e-3)  # lr / 10
    assert max(seen) == pytest.approx(1e-2) and seen.index(max(seen)) == 9  # peak after 5% of the steps
    assert seen[-1] == pytest.approx(1e-5, rel=1e-3)  # lr / 1000


def test_lr_schedule_refuses_bad_arguments():
    optimizer = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'cosin'"):
        train.lr_schedule(optimizer, 10, "cosin")
    with pytest.raises(ValueError, match="positive whole number"):
        train.lr_schedule(optimizer, 0, "cosine")
    with pytest.raises(ValueError, match="warmup must be >= 0"):
        train.lr_schedule(optimizer, 10, "cosine", warmup=-1)
    with pytest.raises(ValueError, match="one_cycle's warmup must be a fraction"):
        train.lr_schedule(optimizer, 10, "one_cycle", warmup=0)


def test_load_or_train_keys_the_cache_on_a_settings_dataclass(tmp_cache):
    @dataclasses.dataclass(frozen=True)
    class Tiny:
        steps: int = 20

    m1, _ = train.load_or_train("toy", _build, _train, Tiny(), profile="smoke")
    _, h2 = train.load_or_train("toy", _build, _train, Tiny(), profile="smoke")
    assert "loaded_from" in h2.meta
    assert train.cache_path("toy", Tiny(), "smoke") == train.cache_path("toy", {"steps": 20}, "smoke")
    assert train.cache_path("toy", Tiny(21), "smoke") != train.cache_path("toy", Tiny(), "smoke")
    with pytest.raises(TypeError, match="dataclass instance or a dict"):
        train.cache_path("toy", [("steps", 20)], "smoke")


def test_a_rejected_cache_file_does_not_seed_the_retrained_model(tmp_cache):
    """A strict load copies the matching tensors before it raises on an unexpected key: the retraining must
    start from a freshly built model, not from the rejected file's weights."""
    clean, _ = train.load_or_train("toy", _build, _train, {}, profile="smoke")
    path = train.cache_path("toy", {}, "smoke")
    payload = torch.load(path, weights_only=True)
    payload["state_dict"] = {k: v + 0.01 for k, v in payload["state_dict"].items()}
    payload["state_dict"]["extra.weight"] = torch.zeros(1)  # makes the strict load fail after copying
    torch.save(payload, path)
    with pytest.warns(train.CacheWarning, match="Unexpected"):
        retrained, history = train.load_or_train("toy", _build, _train, {}, profile="smoke")
    assert "loaded_from" not in history.meta
    for a, b in zip(clean.state_dict().values(), retrained.state_dict().values()):
        assert torch.equal(a, b)


def test_an_unwritable_cache_keeps_the_trained_model(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("GENCOURSE_CACHE", str(blocker / "cache"))
    calls = []

    def counting(model):
        calls.append(1)
        return _train(model)

    with pytest.warns(train.CacheWarning, match="cannot write the model cache.*GENCOURSE_CACHE"):
        model, history = train.load_or_train("toy", _build, counting, {}, profile="smoke")
    assert calls == [1] and history.meta["steps"] == 20 and not model.training


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores a read-only folder's permissions")
def test_a_read_only_cache_folder_keeps_the_trained_model(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    folder.mkdir()
    folder.chmod(0o500)
    monkeypatch.setenv("GENCOURSE_CACHE", str(folder))
    with pytest.warns(train.CacheWarning, match="cannot write the model cache"):
        _, history = train.load_or_train("toy", _build, _train, {}, profile="smoke")
    assert history.meta["steps"] == 20


def test_a_failing_save_keeps_the_trained_model(tmp_cache, monkeypatch):
    def full_disk(payload, path):
        raise RuntimeError("[enforce fail at inline_container.cc] No space left on device")

    monkeypatch.setattr(train.torch, "save", full_disk)
    with pytest.warns(train.CacheWarning, match="could not save toy"):
        _, history = train.load_or_train("toy", _build, _train, {}, profile="smoke")
    assert history.meta["steps"] == 20
    assert not any(tmp_cache.iterdir())  # no temporary file left behind


def test_a_cache_entry_that_is_a_folder_is_reported(tmp_cache):
    path = train.cache_path("toy", {}, "smoke")
    path.mkdir(parents=True)
    with pytest.warns(train.CacheWarning, match="is a folder"):
        _, history = train.load_or_train("toy", _build, _train, {}, profile="smoke")
    assert history.meta["steps"] == 20


def test_concurrent_saves_of_the_same_model_both_succeed(tmp_cache):
    """Two processes training the same model: each save writes its own temporary file, so neither rename
    can pull the other's file away."""
    path = train.cache_path("toy", {}, "smoke")
    path.parent.mkdir(parents=True)
    errors = []

    def save(i):
        try:
            for _ in range(20):
                train.save_atomic({"i": i, "x": torch.randn(20000)}, path)
        except Exception as exc:  # noqa: BLE001  (collected and asserted below)
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert torch.load(path, weights_only=True)["i"] in range(4)
    assert [p.name for p in tmp_cache.iterdir()] == [path.name]


@pytest.mark.parametrize("budget", [{"steps": -1}, {"steps": 0}, {"epochs": 0}, {"seconds": -0.5}])
def test_a_budget_that_trains_nothing_is_refused(budget):
    with pytest.raises(ValueError, match=f"{next(iter(budget))} must be > 0"):
        train.fit(nn.Linear(3, 1), _mse, TensorLoader(*_regression(), batch_size=32), **budget)


def test_the_nan_guard_names_nan_inputs_among_the_causes():
    x, y = _regression()
    x[3, 1] = float("nan")
    with pytest.raises(train.NonFiniteLossError, match="NaN inputs"):
        train.fit(nn.Linear(3, 1), _mse, TensorLoader(x, y, batch_size=256), steps=1)
