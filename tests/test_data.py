import math

import pytest
import torch

from gencourse import data


@pytest.mark.parametrize("name", data.TOY2D)
def test_toy2d_shape_range_and_seed(name):
    x = data.toy2d(name, 500, seed=1)
    assert x.shape == (500, 2) and x.dtype == torch.float32
    assert x.abs().max() < 4.6
    assert torch.equal(x, data.toy2d(name, 500, seed=1))
    assert not torch.equal(x, data.toy2d(name, 500, seed=2))


@pytest.mark.parametrize("name,k", [("ring8", 8), ("grid25", 25)])
def test_mixture_samples_sit_on_their_centres(name, k):
    modes = data.toy2d_modes(name)
    assert modes.centres.shape == (k, 2)
    x = data.toy2d(name, 20000, seed=0)
    dist, nearest = torch.cdist(x, modes.centres).min(dim=1)
    assert (dist < 4 * modes.std).float().mean() > 0.999  # a 2D Gaussian puts ~99.97% within 4 std
    counts = torch.bincount(nearest, minlength=k).float()
    assert counts.min() > 0.7 * 20000 / k  # every mode is used, roughly equally


def test_toy2d_shapes_are_what_the_docstring_says():
    circles = data.toy2d("circles", 4000, seed=0).norm(dim=1)
    assert ((circles - 1).abs() < 0.25).float().mean() == pytest.approx(0.5, abs=0.05)
    assert ((circles - 3).abs() < 0.25).float().mean() == pytest.approx(0.5, abs=0.05)
    board = data.toy2d("checkerboard", 4000, seed=0) / 2  # squares of side 1 on [-2, 2]^2
    assert ((board[:, 0].floor() + board[:, 1].floor()) % 2 == 0).all()


def test_toy2d_bad_input():
    with pytest.raises(ValueError, match="ring8, grid25"):
        data.toy2d("spiral", 10)
    with pytest.raises(ValueError, match="positive integer"):
        data.toy2d("moons", 0)
    with pytest.raises(ValueError, match="only 'ring8' and 'grid25'"):
        data.toy2d_modes("moons")


@pytest.fixture(scope="module")
def mnist_splits():
    return data.mnist(train=True), data.mnist(train=False)


def test_mnist_from_the_mirror(mnist_splits):
    train, test = mnist_splits
    assert (len(train), len(test)) == (60000, 10000)
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert sorted(torch.unique(test.labels).tolist()) == list(range(10))
    x, y = test.tensors()
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() == 1 and y.dtype == torch.int64
    xs, _ = test.tensors("symmetric", n=100)
    assert xs.shape == (100, 1, 28, 28) and xs.min() == -1 and xs.max() == 1
    image, label = test[0]
    assert image.shape == (1, 28, 28) and torch.equal(image, x[0]) and label == y[0]


def test_loader_batches_cover_the_split_once_per_epoch(mnist_splits):
    _, test = mnist_splits
    loader = test.loader(batch_size=256, n=1000, drop_last=False, generator=torch.Generator().manual_seed(0))
    assert len(loader) == 4
    batches = list(loader)
    assert [len(b[0]) for b in batches] == [256, 256, 256, 232]
    labels = torch.cat([b[1] for b in batches])
    assert torch.equal(labels.sort().values, test.labels[:1000].sort().values)


def test_offline_missing_dataset_error_is_clear(tmp_path, monkeypatch):
    monkeypatch.delenv("GENCOURSE_DATA", raising=False)
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.mnist(root=tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "GENCOURSE_DATA" in message and "download" in message


def test_relative_data_variable_resolves_from_the_project_root(monkeypatch, tmp_path):
    monkeypatch.setenv("GENCOURSE_DATA", "some/relative/dir")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.mnist(download=False)
    message = str(info.value)
    assert "relative to the project root" in message and "the repository's data/ folder" in message


def test_binarize_is_bernoulli_of_the_intensity():
    x = torch.full((200000,), 0.3)
    b = data.binarize(x, generator=torch.Generator().manual_seed(0))
    assert set(b.unique().tolist()) <= {0.0, 1.0}
    assert b.mean() == pytest.approx(0.3, abs=0.005)


def test_dequantize_stays_in_the_pixel_cell():
    k = torch.randint(0, 256, (1000, 1, 4, 4), dtype=torch.uint8)
    u = data.dequantize(k)
    assert ((u * 256).floor() == k.float()).all() and u.min() >= 0 and u.max() < 1
    with pytest.raises(ValueError, match="uint8"):
        data.dequantize(k.float())


def test_logit_transform_log_det_matches_autograd_and_inverts():
    x = torch.rand(3, 5, dtype=torch.float64)
    y, log_det = data.logit_transform(x)
    assert torch.allclose(data.inverse_logit_transform(y), x)
    jac = torch.autograd.functional.jacobian(lambda v: data.logit_transform(v[None])[0][0], x[0])
    assert log_det[0].item() == pytest.approx(torch.logdet(jac).item(), rel=1e-9)
    assert math.isfinite(data.logit_transform(torch.tensor([[0.0, 1.0]]))[1].item())


def test_scaling_helpers_round_trip():
    x = torch.rand(10)
    assert torch.allclose(data.from_symmetric(data.to_symmetric(x)), x)
    assert data.to_unit(torch.tensor([0, 255], dtype=torch.uint8)).tolist() == [0.0, 1.0]
