import math

import numpy as np
import pytest
import scipy.linalg
import torch

from gencourse import metrics
from gencourse.data import mnist


@pytest.fixture(scope="module")
def mnist_test():
    return mnist(train=False).tensors("unit")


@pytest.fixture(scope="module")
def mnist_train_sample():
    x, y = mnist(train=True).tensors("unit")
    return x[:2000], y[:2000]


def random_gaussian(d, rng, rank=None):
    a = rng.standard_normal((d, rank or d))
    return rng.standard_normal(d), a @ a.T / d


# ---- KL divergence and bits per dim ----


def test_kl_is_nonnegative_and_zero_only_for_equal_distributions():
    g = torch.Generator().manual_seed(0)
    p = torch.rand(100, 6, generator=g).softmax(1)
    q = torch.rand(100, 6, generator=g).softmax(1)
    kl = metrics.kl_divergence(p, q)
    assert kl.shape == (100,)
    assert (kl > 0).all()
    assert torch.allclose(metrics.kl_divergence(p, p), torch.zeros(100), atol=1e-7)


def test_kl_matches_the_closed_form_and_handles_zeros():
    p, q = torch.tensor([0.25, 0.75]), torch.tensor([0.5, 0.5])
    expected = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert metrics.kl_divergence(p, q).item() == pytest.approx(expected, rel=1e-6)
    # 0 log 0 = 0: an outcome p never produces costs nothing; one q cannot produce costs infinity
    assert metrics.kl_divergence(torch.tensor([0.0, 1.0]), q).item() == pytest.approx(math.log(2), rel=1e-6)
    assert metrics.kl_divergence(q, torch.tensor([0.0, 1.0])).item() == math.inf


def test_kl_rejects_unnormalised_or_mismatched_input():
    with pytest.raises(ValueError, match="sum to 1"):
        metrics.kl_divergence(torch.tensor([1.0, 2.0]), torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="same shape"):
        metrics.kl_divergence(torch.tensor([0.5, 0.5]), torch.tensor([0.2, 0.3, 0.5]))


def test_bits_per_dim_converts_nats_per_example():
    assert metrics.bits_per_dim(torch.full((5,), 784 * math.log(2)), 784) == pytest.approx(1.0)
    assert metrics.bits_per_dim(torch.tensor([2.0, 4.0]) * math.log(2), 1) == pytest.approx(3.0)


def test_bits_per_dim_accepts_every_discrete_nll_and_its_estimates():
    assert metrics.bits_per_dim(0.0, 784) == 0.0  # a certain outcome costs nothing
    # an estimate of -log P (IWAE) may dip below 0 by chance, by up to 64 bits with probability 2^-64
    assert metrics.bits_per_dim(torch.tensor([-60 * math.log(2), 100.0]), 784) == pytest.approx(
        (100 - 60 * math.log(2)) / 2 / (784 * math.log(2))
    )


def test_bits_per_dim_refuses_a_log_likelihood_in_place_of_its_negative():
    log_likelihood = -torch.tensor([90.0, 110.0])  # binarized MNIST: log P(x) of about -100 nats
    with pytest.raises(ValueError, match="log-likelihood passed where its negative is meant"):
        metrics.bits_per_dim(log_likelihood, 784)


def test_bits_per_dim_refuses_the_nll_of_a_dequantized_density_without_its_cells():
    """-log p(x) of a flow's density on [0, 1)^784 at about 1 bit/dim is about -3800 nats: without the
    D log 256 it would read as -7 bits/dim; gencourse.flows.dequantized_bits_per_dim is the function for it."""
    log_density = torch.full((3,), 784 * (math.log(256) - math.log(2)))  # 1 bit/dim once dequantized
    with pytest.raises(ValueError, match="dequantized_bits_per_dim"):
        metrics.bits_per_dim(-log_density, 784)
    from gencourse.flows import dequantized_bits_per_dim

    assert dequantized_bits_per_dim(log_density, 784).mean().item() == pytest.approx(1.0)


def test_bits_per_dim_of_a_continuous_density_may_be_negative_when_asked_for():
    nll = torch.tensor([-1.5, -0.5])  # a narrow 2D density: log p(x) > 0 is legitimate
    assert metrics.bits_per_dim(nll, 2, continuous=True) == pytest.approx(-0.5 / math.log(2))
    assert metrics.bits_per_dim(nll, 2) == pytest.approx(-0.5 / math.log(2))  # within the estimate margin
    with pytest.raises(ValueError, match="continuous=True"):
        metrics.bits_per_dim(nll * 100, 2)
    assert metrics.bits_per_dim(nll * 100, 2, continuous=True) == pytest.approx(-50 / math.log(2))


# ---- Frechet distance / FID ----


@pytest.mark.parametrize("rank", [None, 3])
def test_frechet_distance_matches_scipy_sqrtm(rank):
    rng = np.random.default_rng(0)
    for _ in range(5):
        mu1, s1 = random_gaussian(8, rng, rank)
        mu2, s2 = random_gaussian(8, rng)
        covmean = scipy.linalg.sqrtm(s1 @ s2).real
        expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
        assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6, abs=1e-8)


def test_frechet_distance_in_one_dimension_is_the_closed_form():
    # between N(m1, s1^2) and N(m2, s2^2): (m1 - m2)^2 + (s1 - s2)^2
    d = metrics.frechet_distance(
        torch.tensor([1.0]), torch.tensor([[4.0]]), torch.tensor([-2.0]), torch.tensor([[1.0]])
    )
    assert d == pytest.approx(9.0 + 1.0)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_noise():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(2000, 16, generator=g) @ torch.randn(16, 16, generator=g)
    assert metrics.fid(features, features) == pytest.approx(0.0, abs=1e-6)
    noise = torch.randn(features.shape, generator=g)
    scores = [metrics.fid(features, features + sigma * noise) for sigma in (0.1, 0.5, 1.0, 2.0)]
    assert scores[0] > 0
    assert all(a < b for a, b in zip(scores, scores[1:])), scores


def test_fid_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        metrics.fid(torch.randn(10), torch.randn(10, 3))
    with pytest.raises(ValueError, match="different dimensions"):
        metrics.fid(torch.randn(10, 2), torch.randn(10, 3))


# ---- Inception Score ----


def test_inception_score_of_uniform_predictions_is_one():
    assert metrics.inception_score(torch.full((100, 10), 0.1)) == pytest.approx(1.0)


def test_inception_score_of_confident_balanced_predictions_is_the_number_of_classes():
    probs = torch.eye(10).repeat(30, 1)
    assert metrics.inception_score(probs) == pytest.approx(10.0, rel=1e-6)
    # confident but all the same class: no diversity, back to 1
    assert metrics.inception_score(torch.eye(10)[[3] * 50]) == pytest.approx(1.0)
    # confident and balanced over 4 of 10 classes: 4
    assert metrics.inception_score(torch.eye(10)[torch.arange(40) % 4]) == pytest.approx(4.0, rel=1e-6)


def test_inception_score_rejects_logits():
    with pytest.raises(ValueError, match="softmax"):
        metrics.inception_score(torch.randn(20, 10))


# ---- precision / recall ----


def test_precision_recall_of_identical_sets_is_one():
    x = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    assert metrics.precision_recall(x, x.clone()) == (1.0, 1.0)


def test_precision_recall_of_disjoint_sets_is_zero():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(500, 8, generator=g)
    fake = torch.randn(500, 8, generator=g) + 20
    assert metrics.precision_recall(real, fake) == (0.0, 0.0)


def test_precision_recall_separates_quality_from_coverage():
    # the real data has two clusters; the fake set is one of them, densely: precise but half the recall
    g = torch.Generator().manual_seed(0)
    real = torch.cat([torch.randn(500, 4, generator=g), torch.randn(500, 4, generator=g) + 30])
    fake = torch.randn(1000, 4, generator=g)
    precision, recall = metrics.precision_recall(real, fake, k=3, chunk=128)
    assert precision > 0.95
    assert 0.4 < recall <= 0.5


def test_precision_recall_chunking_does_not_change_the_result():
    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(300, 5, generator=g), 1.3 * torch.randn(300, 5, generator=g)
    assert metrics.precision_recall(real, fake, chunk=7) == metrics.precision_recall(real, fake, chunk=1000)


# ---- the judge ----


def test_judge_weights_are_small_and_reach_99_percent_on_the_mnist_test_set(mnist_test):
    assert metrics.JUDGE_PATH.stat().st_size < 1_000_000
    x, y = mnist_test
    assert metrics.accuracy(metrics.judge(), x, y) >= 0.99


def test_judge_features_and_probs(mnist_test):
    x = mnist_test[0][:64]
    judge = metrics.judge()
    assert judge is metrics.judge()  # loaded once per process
    assert not judge.training
    features, probs = judge.features(x), judge.probs(x)
    assert features.shape == (64, metrics.Judge.feature_dim)
    assert probs.shape == (64, 10)
    assert torch.allclose(probs.sum(1), torch.ones(64), atol=1e-5)
    assert torch.allclose(judge.head(features).softmax(1), probs, atol=1e-6)
    # batching does not change the answer
    assert torch.allclose(judge.features(x, batch_size=5), features, atol=1e-5)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (torch.rand(4, 1, 28, 28) * 2 - 1, r"\(x \+ 1\) / 2"),
        (torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8), "/ 255"),
        (torch.rand(4, 1, 28, 28) * 255, "/ 255"),
        (torch.rand(4, 28, 28), "unsqueeze"),
        (torch.rand(4, 784), r"view\(-1, 1, 28, 28\)"),
        (torch.rand(4, 3, 32, 32), r"\[N, 1, 28, 28\]"),
        (torch.full((4, 1, 28, 28), float("nan")), "NaN"),
    ],
)
def test_judge_rejects_bad_input_with_a_fix(bad, message):
    with pytest.raises(ValueError, match=message):
        metrics.judge().probs(bad)


def test_a_corrupt_weights_file_is_reported(tmp_path):
    path = tmp_path / "judge.pt"
    torch.save({"nothing": torch.zeros(1)}, path)
    with pytest.raises(RuntimeError, match="train-judge"):
        metrics.load_judge(path)
    with pytest.raises(FileNotFoundError, match="train-judge"):
        metrics.load_judge(tmp_path / "missing.pt")


# ---- evaluate_samples ----


def test_evaluate_samples_of_real_digits(mnist_train_sample):
    scores = metrics.evaluate_samples(mnist_train_sample[0])
    assert set(scores) == {
        "fid",
        "inception_score",
        "precision",
        "recall",
        "confident",
        "class_counts",
        "classes_present",
        "n",
    }
    assert scores["n"] == 2000
    assert scores["confident"] > 0.95
    assert scores["classes_present"] == 10
    assert sum(scores["class_counts"]) == 2000 and len(scores["class_counts"]) == 10
    assert scores["inception_score"] > 9.0
    assert scores["precision"] > 0.8 and scores["recall"] > 0.8
    noisy = metrics.evaluate_samples((mnist_train_sample[0] + 0.3 * torch.randn(2000, 1, 28, 28)).clamp(0, 1))
    assert noisy["fid"] > 5 * scores["fid"] + 1


def test_evaluate_samples_of_one_digit_finds_one_class(mnist_train_sample):
    x, y = mnist_train_sample
    sevens = x[y == 7]
    scores = metrics.evaluate_samples(sevens)
    assert scores["classes_present"] == 1
    assert scores["class_counts"][7] >= 0.98 * len(sevens)
    assert scores["inception_score"] < 1.5
    assert scores["recall"] < 0.3 < scores["precision"]


def test_evaluate_samples_rejects_too_few_or_symmetric_images():
    with pytest.raises(ValueError, match="more than"):
        metrics.evaluate_samples(torch.rand(2, 1, 28, 28))
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        metrics.evaluate_samples(torch.rand(50, 1, 28, 28) * 2 - 1)


def test_reference_features_survive_an_unwritable_cache(tmp_path, monkeypatch):
    """The judge's reference features are only cached for speed: a cache path under a file must not lose them."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GENCOURSE_CACHE", str(blocker / "cache"))
    monkeypatch.setattr(metrics, "_REFERENCE", None)
    from gencourse.train import CacheWarning

    with pytest.warns(CacheWarning, match="cannot cache the judge's reference features.*GENCOURSE_CACHE"):
        features = metrics.reference_features()
    assert features.shape == (10000, metrics.Judge.feature_dim) and torch.isfinite(features).all()


def test_reference_features_are_cached_without_leftover_files(tmp_path, monkeypatch):
    monkeypatch.setenv("GENCOURSE_CACHE", str(tmp_path))
    monkeypatch.setattr(metrics, "_REFERENCE", None)
    first = metrics.reference_features()
    (cached,) = tmp_path.iterdir()
    assert cached.name.startswith("judge-features-mnist-test-") and cached.suffix == ".pt"
    monkeypatch.setattr(metrics, "_REFERENCE", None)
    assert torch.equal(metrics.reference_features(), first)
