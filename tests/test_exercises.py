import math

import pytest
import torch

from gencourse import exercises
from gencourse.exercises import ExerciseError

# ---- Notebook 04: from autoencoders to the VAE ----


def test_check_gaussian_kl_accepts_the_reference(capsys):
    exercises.check_gaussian_kl(lambda mu, logvar: 0.5 * (mu**2 + logvar.exp() - logvar - 1).sum(-1))
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda mu, logvar: 0.5 * (mu**2 + logvar.exp() - logvar - 1), "sum over the latent"),
        (lambda mu, logvar: 0.5 * (mu**2 + logvar.exp() - logvar).sum(-1), "off by a constant"),
        (lambda mu, logvar: (mu**2 + logvar.exp() - logvar - 1).sum(-1), "off by a factor 2"),
        (lambda mu, logvar: -0.5 * (mu**2 + logvar.exp() - logvar - 1).sum(-1), "sign is flipped"),
        (lambda mu, logvar: 0.5 * (mu**2 + logvar - logvar.clamp(min=1e-6).log() - 1).sum(-1), "variance itself"),
    ],
)
def test_check_gaussian_kl_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_gaussian_kl(wrong)


def test_check_gaussian_kl_says_when_not_written_yet():
    def gaussian_kl(mu, logvar):
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="not written yet"):
        exercises.check_gaussian_kl(gaussian_kl)


def test_check_reparameterize_accepts_the_reference(capsys):
    exercises.check_reparameterize(lambda mu, logvar: mu + torch.exp(0.5 * logvar) * torch.randn_like(mu))
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda mu, logvar: mu, "no noise"),
        (lambda mu, logvar: mu + torch.exp(logvar) * torch.randn_like(mu), "standard deviation"),
        (lambda mu, logvar: torch.normal(mu, torch.exp(0.5 * logvar)).detach(), "no gradient"),
        (lambda mu, logvar: mu + torch.exp(0.5 * logvar.detach()) * torch.randn_like(mu), "both mu and logvar"),
    ],
)
def test_check_reparameterize_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_reparameterize(wrong)


# ---- Notebook 05: VAEs on images, in depth ----


def test_check_iwae_bound_accepts_the_reference(capsys):
    exercises.check_iwae_bound(lambda log_w: torch.logsumexp(log_w, 0) - math.log(log_w.shape[0]))
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda log_w: log_w.mean(0), "ELBO"),
        (lambda log_w: torch.logsumexp(log_w, 0), "off by a constant"),
        (lambda log_w: log_w.exp().mean(0).log(), "logsumexp"),
        (lambda log_w: torch.logsumexp(log_w, 1) - math.log(log_w.shape[1]), "wrong axis"),
    ],
)
def test_check_iwae_bound_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_iwae_bound(wrong)


def test_check_free_bits_kl_accepts_the_reference(capsys):
    exercises.check_free_bits_kl(lambda kl, lam: kl.mean(0).clamp(min=lam).sum())
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda kl, lam: kl.clamp(min=lam).sum(1).mean(), "batch average"),
        (lambda kl, lam: kl.mean(0).clamp(max=lam).sum(), "clamp\\(min=lam\\)"),
        (lambda kl, lam: kl.mean(0).clamp(min=lam), "one number"),
        (lambda kl, lam: kl.mean(0).sum(), "not right yet"),
    ],
)
def test_check_free_bits_kl_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_free_bits_kl(wrong)


# ---- Notebook 07: Diffusion models ----


def _q_sample_right(x0, t, noise, schedule):
    abar = schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


class _OneStep:
    """A schedule whose alphas_cumprod is alphas: the "one step instead of the product" mistake."""

    def __init__(self, schedule):
        self.alphas_cumprod = schedule.alphas


def _variances(x0, t, noise, schedule):
    abar = schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
    return abar * x0 + (1 - abar) * noise


def test_check_q_sample_accepts_the_reference(capsys):
    exercises.check_q_sample(_q_sample_right)
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong,message",
    [
        (lambda x0, t, n, s: _q_sample_right(x0, t, n, _OneStep(s)), "alphas_cumprod"),
        (lambda x0, t, n, s: _variances(x0, t, n, s), "standard deviations"),
        (lambda x0, t, n, s: _q_sample_right(n, t, x0, s), "swapped"),
        (lambda x0, t, n, s: _q_sample_right(x0, t, n, s)[:, 0], "shape"),
    ],
)
def test_check_q_sample_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_q_sample(wrong)


def test_check_q_sample_says_not_done_yet():
    def stub(x0, t, noise, schedule):
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="not written yet"):
        exercises.check_q_sample(stub)


def _ddpm_step_right(x_t, eps, t, schedule, z):
    beta, alpha, abar = schedule.betas[t], schedule.alphas[t], schedule.alphas_cumprod[t]
    mean = (x_t - beta / (1 - abar).sqrt() * eps) / alpha.sqrt()
    return mean + beta.sqrt() * z if t > 0 else mean


def test_check_ddpm_step_accepts_the_reference(capsys):
    exercises.check_ddpm_step(_ddpm_step_right)
    assert "Correct!" in capsys.readouterr().out


def _no_noise(x_t, eps, t, s, z):
    return _ddpm_step_right(x_t, eps, 0, s, z) if t == 0 else _ddpm_step_right(x_t, eps, t, s, z * 0)


def _noise_at_zero(x_t, eps, t, s, z):
    out = _ddpm_step_right(x_t, eps, t, s, z)
    return out + s.betas[0].sqrt() * z if t == 0 else out


def _abar_in_mean(x_t, eps, t, s, z):
    beta, abar = s.betas[t], s.alphas_cumprod[t]
    return (x_t - beta / (1 - abar).sqrt() * eps) / abar.sqrt() + (beta.sqrt() * z if t else 0)


@pytest.mark.parametrize(
    "wrong,message",
    [(_no_noise, "no noise is added"), (_noise_at_zero, "t = 0"), (_abar_in_mean, "sqrt\\(alpha_t\\)")],
)
def test_check_ddpm_step_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_ddpm_step(wrong)
