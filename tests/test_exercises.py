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


# ---- Notebook 06: Normalizing flows ----


def lognormal_log_prob(x):
    return torch.distributions.Normal(0.0, 1.0).log_prob(x.log()) - x.log()


def test_check_lognormal_log_prob_accepts_the_reference(capsys):
    exercises.check_lognormal_log_prob(lognormal_log_prob)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda x: torch.distributions.Normal(0.0, 1.0).log_prob(x.log()), "log-derivative"),
        (lambda x: torch.distributions.Normal(0.0, 1.0).log_prob(x.log()) + x.log(), "wrong sign"),
        (lambda x: torch.distributions.Normal(0.0, 1.0).log_prob(x), "Expected"),
    ],
)
def test_check_lognormal_log_prob_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_lognormal_log_prob(wrong)


def affine_coupling(x, mask, net):
    s, t = net(x * mask)
    y = x * mask + (1 - mask) * (x * s.exp() + t)
    return y, ((1 - mask) * s).sum(1)


def test_check_affine_coupling_accepts_the_reference(capsys):
    exercises.check_affine_coupling(affine_coupling)
    assert "Correct" in capsys.readouterr().out


def _all_dims(x, mask, net):
    y, _ = affine_coupling(x, mask, net)
    return y, net(x * mask)[0].sum(1)


def _exp_s(x, mask, net):
    y, _ = affine_coupling(x, mask, net)
    return y, ((1 - mask) * net(x * mask)[0].exp()).sum(1)


def _unmasked_input(x, mask, net):
    s, t = net(x)
    return x * mask + (1 - mask) * (x * s.exp() + t), ((1 - mask) * s).sum(1)


def _no_sum(x, mask, net):
    y, _ = affine_coupling(x, mask, net)
    return y, (1 - mask) * net(x * mask)[0]


def _transforms_everything(x, mask, net):
    s, t = net(x * mask)
    return x * s.exp() + t, ((1 - mask) * s).sum(1)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_all_dims, "only where mask == 0"),
        (_exp_s, "whose log is s"),
        (_unmasked_input, "net\\(mask \\* x\\)"),
        (_no_sum, "one number per example"),
        (_transforms_everything, "pass through unchanged"),
        (lambda x, mask, net: x, "pair"),
    ],
)
def test_check_affine_coupling_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_affine_coupling(wrong)


def bits_per_dim(log_prob, num_dims):
    return (-log_prob + num_dims * math.log(256)) / (num_dims * math.log(2))


def test_check_bits_per_dim_accepts_the_reference(capsys):
    exercises.check_bits_per_dim(bits_per_dim)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda lp, d: -lp / (d * math.log(2)), "8 bits per dimension too low"),
        (lambda lp, d: (-lp + d * math.log(256)) / math.log(2), "bits per image"),
        (lambda lp, d: (-lp + d * math.log(256)) / d, "nats per dimension"),
        (lambda lp, d: (-lp + d * math.log(255)) / (d * math.log(2)), "Expected"),
    ],
)
def test_check_bits_per_dim_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_bits_per_dim(wrong)


def test_flow_exercise_stubs_say_not_done_yet():
    def stub(*args):
        raise NotImplementedError

    for check in (exercises.check_lognormal_log_prob, exercises.check_affine_coupling, exercises.check_bits_per_dim):
        with pytest.raises(ExerciseError, match="not written yet"):
            check(stub)
