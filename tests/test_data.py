import math
import os
from pathlib import Path

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


# ---------------------------------------------------------------------------------------------
# A corrupt or misplaced dataset is reported as such (copies in tmp_path; the mirror is never touched)
# ---------------------------------------------------------------------------------------------

RAW_SIZES = {
    "train-images-idx3-ubyte": 47040016,
    "train-labels-idx1-ubyte": 60008,
    "t10k-images-idx3-ubyte": 7840016,
    "t10k-labels-idx1-ubyte": 10008,
}


MIRROR_ROOTS = [Path(os.environ["GENCOURSE_DATA"])] if os.environ.get("GENCOURSE_DATA") else []  # read before
MIRROR_ROOTS.append(Path(__file__).resolve().parents[1] / "data")  # the `offline` fixture unsets it


def mirror_raw() -> Path:
    """The raw folder of the MNIST mirror the suite runs on (skip when there is none)."""
    for root in MIRROR_ROOTS:
        raw = root / "MNIST" / "raw"
        if all((raw / name).is_file() for name in RAW_SIZES):
            return raw
    pytest.skip("no MNIST mirror: set GENCOURSE_DATA to the folder that contains MNIST/raw")


def dataset_copy(tmp_path, folder="MNIST", replace: dict | None = None) -> Path:
    """``tmp_path/datasets/<folder>/raw`` holding links to the mirror's files, except those in ``replace``
    (file name -> bytes), written as real files. Returns the dataset root ``tmp_path/datasets``."""
    raw = tmp_path / "datasets" / folder / "raw"
    raw.mkdir(parents=True)
    for name in RAW_SIZES:
        if replace and name in replace:
            (raw / name).write_bytes(replace[name])
        else:
            (raw / name).symlink_to(mirror_raw() / name)
    return tmp_path / "datasets"


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def offline(monkeypatch):
    """Downloads fail at once (connection refused), whatever network the machine has."""
    import torchvision.datasets

    for cls in (torchvision.datasets.MNIST, torchvision.datasets.FashionMNIST):
        monkeypatch.setattr(cls, "mirrors", ["http://127.0.0.1:9/"])
    monkeypatch.delenv("GENCOURSE_DATA", raising=False)


def head(name: str, n: int) -> bytes:
    with open(mirror_raw() / name, "rb") as f:
        return f.read(n)


def labels_with(value: int) -> bytes:
    good = bytearray(head("train-labels-idx1-ubyte", 60008))
    good[8 + 123] = value
    return bytes(good)


@pytest.mark.parametrize(
    "name, content, train, problem",
    [
        (
            "train-images-idx3-ubyte",
            "truncated",
            True,
            "expected 47040016 bytes (60000 images of 28x28), found 1000016",
        ),
        ("train-labels-idx1-ubyte", "random", True, "its header reads magic number"),
        ("t10k-labels-idx1-ubyte", "random-short", False, "expected 10008 bytes (10000 labels), found 1234"),
        ("t10k-images-idx3-ubyte", "empty", False, "expected 7840016 bytes (10000 images of 28x28), found 0"),
        ("train-labels-idx1-ubyte", "label 200", True, "label 200 at index 123"),
    ],
)
def test_a_corrupt_file_is_named_with_its_expected_and_found_size(tmp_path, offline, name, content, train, problem):
    rng = torch.Generator().manual_seed(0)
    bad = {
        "truncated": lambda: head(name, 1_000_016),
        "random": lambda: bytes(torch.randint(0, 256, (60008,), generator=rng, dtype=torch.uint8).tolist()),
        "random-short": lambda: bytes(torch.randint(0, 256, (1234,), generator=rng, dtype=torch.uint8).tolist()),
        "empty": lambda: b"",
        "label 200": lambda: labels_with(200),
    }[content]()
    root = dataset_copy(tmp_path, replace={name: bad})
    before = tree(root)
    with pytest.raises(OSError) as info:  # a bare AssertionError or RuntimeError from torchvision fails here
        data.mnist(train=train, root=root)
    message = str(info.value)
    assert type(info.value).__name__ == "DatasetCorruptError", message
    assert f"{root / 'MNIST' / 'raw' / name} is corrupt" in message
    assert problem in message
    assert "delete it" in message and "copy it again" in message
    assert "was not found" not in message and "downloading into" not in message
    assert tree(root) == before, "nothing is created or removed inside the dataset tree"


@pytest.mark.parametrize("inside", ["MNIST", "MNIST/raw"])
@pytest.mark.parametrize("how", ["GENCOURSE_DATA", "root"])
def test_a_root_pointing_inside_the_dataset_tree_says_where_to_point_it(tmp_path, offline, monkeypatch, inside, how):
    root = dataset_copy(tmp_path)
    before = tree(root)
    wrong = root / inside
    if how == "GENCOURSE_DATA":
        monkeypatch.setenv("GENCOURSE_DATA", str(wrong))
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.mnist(root=wrong if how == "root" else None)  # download=True: nothing may be created either
    message = str(info.value)
    assert f"{'GENCOURSE_DATA' if how == 'GENCOURSE_DATA' else 'root'}={wrong}" in message
    assert f"point it at the folder that contains MNIST/: {root}" in message
    assert tree(root) == before, "no MNIST/raw folder was created inside the dataset tree"


def test_idx_files_loose_in_the_root_are_told_where_they_belong(tmp_path, offline, monkeypatch):
    (tmp_path / "downloads").mkdir()
    for name in RAW_SIZES:
        (tmp_path / "downloads" / name).symlink_to(mirror_raw() / name)
    monkeypatch.setenv("GENCOURSE_DATA", str(tmp_path / "downloads"))
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.mnist()
    assert f"GENCOURSE_DATA={tmp_path / 'downloads'} holds idx files directly" in str(info.value)
    assert f"move them into {tmp_path / 'downloads' / 'MNIST' / 'raw'}" in str(info.value)
    assert sorted(p.name for p in (tmp_path / "downloads").iterdir()) == sorted(RAW_SIZES)


def test_missing_files_are_listed(tmp_path, offline):
    root = dataset_copy(tmp_path)
    (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.mnist(train=True, root=root, download=False)
    message = str(info.value)
    assert f"{root / 'MNIST' / 'raw'}   (the root argument; missing: t10k-labels-idx1-ubyte)" in message


def test_fashion_mnist_uses_the_same_checks(tmp_path, offline):
    """FashionMNIST's idx files have MNIST's sizes and headers, so MNIST's files stand in for them here."""
    root = dataset_copy(tmp_path, folder="FashionMNIST")
    test = data.fashion_mnist(train=False, root=root, download=False)
    assert test.images.shape == (10000, 1, 28, 28) and test.classes[0] == "T-shirt/top"
    bad = dataset_copy(tmp_path / "bad", folder="FashionMNIST", replace={"t10k-images-idx3-ubyte": b"\0" * 100})
    with pytest.raises(OSError, match=r"FashionMNIST/raw/t10k-images-idx3-ubyte is corrupt.*found 100\b"):
        data.fashion_mnist(train=False, root=bad)
    with pytest.raises(data.DatasetNotFoundError, match=r"call gencourse\.data\.fashion_mnist\(\) to download"):
        data.fashion_mnist(root=tmp_path / "empty", download=False)
