import pytest
import torch

from gencourse import exercises
from gencourse.exercises import ExerciseError
from gencourse.metrics import kl_divergence

# ---- Notebook 01: Introduction to generative models ----


def test_check_kl_divergence_accepts_the_reference(capsys):
    exercises.check_kl_divergence(kl_divergence)
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda p, q: (q * (q / p).log()).sum(-1), "KL\\(q \\|\\| p\\)"),
        (lambda p, q: (p * (p / q).log()).sum(-1), "NaN"),
        (lambda p, q: (p * (p.clamp_min(1e-12) / q).log()).sum(), "batch"),
        (lambda p, q: (p * (q.log() - p.clamp_min(1e-12).log())).sum(-1), "sign is flipped"),
    ],
)
def test_check_kl_divergence_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_kl_divergence(wrong)


def test_check_kl_divergence_says_when_nothing_is_written_yet():
    def kl(p, q):
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="not written yet"):
        exercises.check_kl_divergence(kl)


def reference_naive_bayes_sample(theta, digit, n, generator):
    return torch.bernoulli(theta[digit].expand(n, -1), generator=generator)


def test_check_naive_bayes_sample_accepts_the_reference(capsys):
    exercises.check_naive_bayes_sample(reference_naive_bayes_sample)
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda theta, digit, n, g: (theta[digit] > 0.5).float().expand(n, -1), "identical"),
        (lambda theta, digit, n, g: theta[digit].expand(n, -1), "exactly 0 or 1"),
        (lambda theta, digit, n, g: torch.bernoulli(theta[digit + 1].expand(n, -1), generator=g), "digit 4"),
        (lambda theta, digit, n, g: torch.bernoulli(1 - theta[digit].expand(n, -1), generator=g), "frequencies"),
        (lambda theta, digit, n, g: torch.bernoulli(theta[digit].expand(n, -1)), "same generator seed"),
        (lambda theta, digit, n, g: torch.bernoulli(theta[digit].expand(n - 1, -1), generator=g), "shape"),
    ],
)
def test_check_naive_bayes_sample_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_naive_bayes_sample(wrong)
