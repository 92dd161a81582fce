import math

import pytest
import torch
import torch.nn.functional as F

from gencourse import exercises, gan
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


def test_check_langevin_step_accepts_the_reference(capsys):
    exercises.check_langevin_step(lambda x, grad, eps, z: x - eps / 2 * grad + math.sqrt(eps) * z)
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda x, grad, eps, z: x + eps / 2 * grad + math.sqrt(eps) * z, "subtract the gradient"),
        (lambda x, grad, eps, z: x - eps / 2 * grad + eps * z, "sqrt\\(step_size\\)"),
        (lambda x, grad, eps, z: x - eps * grad + math.sqrt(eps) * z, "step_size / 2"),
        (lambda x, grad, eps, z: x - eps / 2 * grad, "gradient descent"),
        (lambda x, grad, eps, z: x - eps / 2 * grad + z, "not right yet"),
    ],
)
def test_check_langevin_step_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_langevin_step(wrong)


# ---- Notebook 02: The adversarial game ----


def test_check_discriminator_loss_accepts_the_reference(capsys):
    exercises.check_discriminator_loss(lambda r, f: gan.discriminator_loss(r, f, "minimax"))
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda r, f: F.softplus(r).mean() + F.softplus(-f).mean(), "swapped"),
        (lambda r, f: F.softplus(-r).sum() + F.softplus(f).sum(), "summed over the batch"),
        (lambda r, f: F.softplus(-r) + F.softplus(f), "one number"),
        (lambda r, f: -(F.softplus(-r).mean() + F.softplus(f).mean()), "sign is flipped"),
        (lambda r, f: -torch.sigmoid(r).log().mean() - (1 - torch.sigmoid(f)).log().mean(), "not finite"),
        (
            lambda r, f: (
                F.binary_cross_entropy(torch.sigmoid(r), torch.ones_like(r))
                + F.binary_cross_entropy(torch.sigmoid(f), torch.zeros_like(f))
            ),
            "large logits",
        ),
        (lambda r, f: F.softplus(-r).mean(), "softplus"),
    ],
)
def test_check_discriminator_loss_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_discriminator_loss(wrong)


def test_check_nonsaturating_loss_accepts_the_reference(capsys):
    exercises.check_nonsaturating_loss(lambda f: gan.generator_loss(f, "nonsaturating"))
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda f: -F.softplus(f).mean(), "minimax loss"),
        (lambda f: F.softplus(f).mean(), "discriminator's goal"),
        (lambda f: -F.softplus(-f).mean(), "sign is flipped"),
        (lambda f: -torch.sigmoid(f).log().mean(), "infinite"),
        (lambda f: F.softplus(-f), "one number"),
    ],
)
def test_check_nonsaturating_loss_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_nonsaturating_loss(wrong)


def test_checkers_say_when_nothing_is_written_yet():
    def generator_loss(fake_logits):
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="not written yet"):
        exercises.check_nonsaturating_loss(generator_loss)


# ---- Notebook 03: GANs on images ----


def _penalty(critic, real, fake, eps_shape=None, at=None, power=2, minus=1.0, create_graph=True):
    """A configurable gradient penalty: the reference, or one typical mistake."""
    eps = torch.rand(eps_shape or (len(real), *([1] * (real.dim() - 1))))
    x_hat = {"real": real, "fake": fake}.get(at, eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=create_graph)
    return (grad.flatten(1).norm(dim=1) - minus).abs().pow(power).mean()


def test_check_gradient_penalty_accepts_the_reference_and_the_package(capsys):
    exercises.check_gradient_penalty(_penalty)
    exercises.check_gradient_penalty(gan.gradient_penalty)
    assert capsys.readouterr().out.count("Correct!") == 2


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda c, r, f: _penalty(c, r, f, minus=0.0), "subtract 1"),
        (lambda c, r, f: _penalty(c, r, f, power=1), "square"),
        (lambda c, r, f: _penalty(c, r, f, create_graph=False), "create_graph=True"),
        (lambda c, r, f: _penalty(c, r, f, at="real"), "real points only"),
        (lambda c, r, f: _penalty(c, r, f, at="fake"), "fake points only"),
        (lambda c, r, f: _penalty(c, r, f, eps_shape=(1, 1, 1, 1)), "one eps"),
        (lambda c, r, f: _penalty(c, r, f).unsqueeze(0), "one number"),
    ],
)
def test_check_gradient_penalty_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_gradient_penalty(wrong)


def _slerp_without_norms(z0, z1, t):
    omega = torch.arccos(z0 @ z1)  # forgets to divide by |z0| |z1|
    t = t[:, None]
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def test_check_slerp_accepts_the_reference(capsys):
    exercises.check_slerp(gan.slerp)
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda z0, z1, t: (1 - t)[:, None] * z0 + t[:, None] * z1, "straight line"),
        (lambda z0, z1, t: gan.slerp(z1, z0, t), "start at z0"),
        (lambda z0, z1, t: gan.slerp(z0, z1, t)[:, :8], "shape"),
        (lambda z0, z1, t: gan.slerp(z0 / z0.norm(), z1 / z1.norm(), t), "must start at z0"),
        (lambda z0, z1, t: _slerp_without_norms(z0, z1, t), "NaN"),
    ],
)
def test_check_slerp_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_slerp(wrong)


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


def test_check_affine_coupling_reference_is_the_packages_layer():
    """The checker's expected (y, log_det) come from gencourse.flows.AffineCoupling; they must equal the
    textbook formula written out here, so a broken package layer fails this test."""
    x, mask, net, y_ref, log_det_ref = exercises.coupling_case()
    y, log_det = affine_coupling(x, mask, net)
    assert torch.allclose(y_ref, y, atol=1e-6) and torch.allclose(log_det_ref, log_det, atol=1e-6)
    assert not torch.allclose(y_ref[:, mask == 0], x[:, mask == 0])  # the case does transform something


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


def test_use_returns_the_students_function_when_its_check_passes(capsys):
    from gencourse import vae

    def gaussian_kl(mu, logvar):
        return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(dim=1)

    chosen = exercises.use(exercises.check_gaussian_kl, gaussian_kl, fallback=vae.gaussian_kl)
    assert chosen is gaussian_kl
    assert capsys.readouterr().out == "using your gaussian_kl\n"


@pytest.mark.parametrize(
    "body, reason",
    [
        ("raise NotImplementedError('your turn')", "is not written yet"),
        ("return -0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(dim=1)", "the sign is flipped"),
        ("return mu.sum(dim=1) + undefined_name", "NameError"),
    ],
)
def test_use_falls_back_to_the_package_and_says_why(capsys, body, reason):
    from gencourse import vae

    namespace = {}
    exec(f"def gaussian_kl(mu, logvar):\n    {body}\n", namespace)
    chosen = exercises.use(exercises.check_gaussian_kl, namespace["gaussian_kl"], fallback=vae.gaussian_kl)
    assert chosen is vae.gaussian_kl
    out = capsys.readouterr().out
    assert out.startswith("using gencourse.vae.gaussian_kl (your gaussian_kl did not pass: ") and reason in out
    assert "Correct" not in out


# ---- Notebook 01: the reference answers the notebook falls back on ----


def test_01_reference_answers_pass_their_own_checks(capsys):
    exercises.check_naive_bayes_sample(exercises.sample_naive_bayes)
    exercises.check_langevin_step(exercises.langevin_step)
    assert capsys.readouterr().out.count("Correct!") == 2


def test_01_use_falls_back_to_the_reference_sampler_when_the_students_is_missing(capsys):
    def sample_naive_bayes(theta, digit, n, generator=None):
        raise NotImplementedError("your turn")

    chosen = exercises.use(
        exercises.check_naive_bayes_sample, sample_naive_bayes, fallback=exercises.sample_naive_bayes
    )
    assert chosen is exercises.sample_naive_bayes
    assert capsys.readouterr().out.startswith("using gencourse.exercises.sample_naive_bayes (your sample_naive_bayes")


def test_01_langevin_step_keeps_a_gaussian_stationary():
    # for E(x) = x^2 / 2 (p = N(0, 1)) the chain's stationary variance is 1 / (1 - step / 4): about 1
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200_000, generator=g)
    for _ in range(20):
        x = exercises.langevin_step(x, x, 0.01, torch.randn(x.shape, generator=g))
    assert abs(x.var().item() - 1) < 0.02


# ---- Notebook 04: the negative ELBO the notebook's training loop uses ----


def _04_negative_elbo(model, x, *, sign=1.0, kl_sign=1.0, sample=True, detach=False, sigma_power=0.5):
    from gencourse import vae

    mu, logvar = model.encode(x)
    z = mu + torch.exp(sigma_power * logvar) * torch.randn_like(mu) if sample else mu
    rec, kl = model.log_px_given_z(x, z.detach() if detach else z), vae.gaussian_kl(mu, logvar)
    return -sign * (rec - kl_sign * kl)


def test_04_check_negative_elbo_accepts_the_reference_and_any_way_of_drawing_the_noise(capsys):
    from gencourse import vae

    def other_noise(model, x):  # eps drawn with another shape, so another stream of random numbers
        mu, logvar = model.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape[::-1]).T
        return vae.gaussian_kl(mu, logvar) - model.log_px_given_z(x, z)

    exercises.check_negative_elbo(_04_negative_elbo)
    exercises.check_negative_elbo(exercises.negative_elbo)
    exercises.check_negative_elbo(other_noise)
    assert capsys.readouterr().out.count("Correct!") == 3


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda model, x: _04_negative_elbo(model, x, sign=-1.0), "the ELBO itself"),
        (lambda model, x: _04_negative_elbo(model, x, kl_sign=-1.0), "the KL has the wrong sign"),
        (lambda model, x: _04_negative_elbo(model, x, kl_sign=0.0), "the KL term is missing"),
        (lambda model, x: _04_negative_elbo(model, x, sample=False), "the same value on every call"),
        (lambda model, x: _04_negative_elbo(model, x).mean(), "one number for the whole batch"),
        (lambda model, x: _04_negative_elbo(model, x, detach=True, kl_sign=0.0), "no gradient reaches the encoder"),
        (lambda model, x: _04_negative_elbo(model, x).detach(), "carries no gradient"),
        (lambda model, x: (lambda mu, lv: 0.5 * (mu**2 + lv.exp() - lv - 1).sum(-1))(*model.encode(x)), "decoder"),
        (lambda model, x: _04_negative_elbo(model, x, sigma_power=1.0), "averages"),
    ],
)
def test_04_check_negative_elbo_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_negative_elbo(wrong)


def test_04_use_falls_back_to_the_reference_negative_elbo_when_the_students_is_missing(capsys):
    def negative_elbo(model, x):
        raise NotImplementedError("your turn")

    chosen = exercises.use(exercises.check_negative_elbo, negative_elbo, fallback=exercises.negative_elbo)
    assert chosen is exercises.negative_elbo
    out = capsys.readouterr().out
    assert out.startswith("using gencourse.exercises.negative_elbo (your negative_elbo did not pass: ")
    assert "is not written yet" in out


# ---- Notebook 02: the optimal discriminator, and the losses used by the inline training loop ----


def test_02_check_optimal_discriminator_accepts_the_reference_and_the_package(capsys):
    exercises.check_optimal_discriminator(lambda p_data, p_g: p_data / (p_data + p_g))
    exercises.check_optimal_discriminator(gan.optimal_discriminator)
    assert capsys.readouterr().out.count("Correct!") == 2


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda a, b: b / (a + b), "probability that x is \\*real\\*"),
        (lambda a, b: a / b, "density ratio"),
        (lambda a, b: a / (a + b).sum(), "not right yet"),
        (lambda a, b: (a / (a + b)).mean(), "shape"),
        (lambda a, b: torch.sigmoid(a - b) if a.dim() == 2 else a / (a + b), "\\[2, 3\\] grid"),
    ],
)
def test_02_check_optimal_discriminator_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_optimal_discriminator(wrong)


def test_02_use_picks_the_students_loss_or_the_package_and_both_train():
    def discriminator_loss(real_logits, fake_logits):
        raise NotImplementedError

    def generator_loss_ns(fake_logits):
        return F.softplus(-fake_logits).mean()

    d_loss = exercises.use(exercises.check_discriminator_loss, discriminator_loss, fallback=gan.discriminator_loss)
    g_loss = exercises.use(exercises.check_nonsaturating_loss, generator_loss_ns, fallback=gan.generator_loss)
    assert d_loss is gan.discriminator_loss and g_loss is generator_loss_ns
    real, fake = torch.tensor([1.0, 2.0]), torch.tensor([-1.0, 0.5])
    assert torch.isclose(d_loss(real, fake), gan.discriminator_loss(real, fake, "nonsaturating"))
    assert torch.isclose(g_loss(fake), gan.generator_loss(fake, "nonsaturating"))


def test_use_says_so_when_it_is_given_the_package_version_again(capsys):
    from gencourse import vae

    assert exercises.use(exercises.check_gaussian_kl, vae.gaussian_kl, fallback=vae.gaussian_kl) is vae.gaussian_kl
    assert capsys.readouterr().out == (
        "using gencourse.vae.gaussian_kl (run the cell with your gaussian_kl again to use yours)\n"
    )


def test_05_free_bits_kl_reference_passes_its_check_and_matches_elbo_loss(capsys):
    from gencourse import vae

    exercises.check_free_bits_kl(exercises.free_bits_kl)
    assert "Correct!" in capsys.readouterr().out
    torch.manual_seed(0)
    model = vae.VAE.mlp(latent_dim=3, hidden=(8,))
    x = torch.rand(5, 1, 28, 28).round()
    torch.manual_seed(1)
    loss, logs = vae.elbo_loss(free_bits=0.5, binarize_data=False)(model, (x, None))
    torch.manual_seed(1)
    rec, kl = model.elbo_terms(x)
    assert torch.isclose(loss, -rec.mean() + exercises.free_bits_kl(kl, 0.5))


def test_05_use_falls_back_to_the_references_when_the_students_are_missing(capsys):
    from gencourse import vae

    def my_iwae_bound(log_w):
        raise NotImplementedError

    def my_free_bits_kl(kl, lam):
        return kl.clamp(min=lam).sum(1).mean()  # clamps each example: a typical mistake

    iwae = exercises.use(exercises.check_iwae_bound, my_iwae_bound, fallback=vae.log_mean_exp)
    free_bits = exercises.use(exercises.check_free_bits_kl, my_free_bits_kl, fallback=exercises.free_bits_kl)
    assert iwae is vae.log_mean_exp and free_bits is exercises.free_bits_kl
    out = capsys.readouterr().out
    assert "using gencourse.vae.log_mean_exp (your my_iwae_bound did not pass" in out
    assert "using gencourse.exercises.free_bits_kl (your my_free_bits_kl did not pass" in out
    log_w = torch.tensor([[-1000.0, 0.0], [-1001.0, math.log(3.0)]])
    assert torch.allclose(iwae(log_w), torch.logsumexp(log_w, 0) - math.log(2))


# ---- Notebook 06: the reference answers the notebook falls back on ----


def test_06_reference_answers_pass_their_checks(capsys):
    exercises.check_lognormal_log_prob(exercises.lognormal_log_prob)
    exercises.check_affine_coupling(exercises.affine_coupling)
    assert capsys.readouterr().out.count("Correct") == 2


def test_06_reference_lognormal_is_torchs_log_normal():
    x = torch.linspace(0.05, 8.0, 100)
    expected = torch.distributions.LogNormal(0.0, 1.0).log_prob(x)
    assert torch.allclose(exercises.lognormal_log_prob(x), expected, atol=1e-5)


def test_06_reference_coupling_inverts_and_its_log_det_is_the_jacobians():
    x, mask, net, y_ref, log_det_ref = exercises.coupling_case(seed=3)
    y, log_det = exercises.affine_coupling(x, mask, net)
    assert torch.allclose(y, y_ref, atol=1e-6) and torch.allclose(log_det, log_det_ref, atol=1e-6)
    s, t = net(y * mask)  # the masked part is unchanged, so (s, t) can be recomputed from y
    assert torch.allclose(y * mask + (1 - mask) * (y - t) * torch.exp(-s), x, atol=1e-5)
    jac = torch.autograd.functional.jacobian(lambda v: exercises.affine_coupling(v[None], mask, net)[0][0], x[0])
    assert torch.isclose(log_det[0], torch.linalg.slogdet(jac)[1], atol=1e-5)


def test_06_use_falls_back_on_the_reference_coupling(capsys):
    def affine_coupling(x, mask, net):
        raise NotImplementedError

    chosen = exercises.use(exercises.check_affine_coupling, affine_coupling, fallback=exercises.affine_coupling)
    assert chosen is exercises.affine_coupling
    assert "using gencourse.exercises.affine_coupling (your affine_coupling did not pass" in capsys.readouterr().out


# ---- Notebook 07: the reverse step as a posterior mean, guidance, flow matching ----


def _07_posterior_step(x_t, eps, t, schedule, z):
    beta, alpha, abar = schedule.betas[t], schedule.alphas[t], schedule.alphas_cumprod[t]
    abar_prev = schedule.abar(t - 1)
    x0_hat = (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()
    mean = (abar_prev.sqrt() * beta * x0_hat + alpha.sqrt() * (1 - abar_prev) * x_t) / (1 - abar)
    return mean + beta.sqrt() * z if t > 0 else mean


def _07_wrapped_abar(x_t, eps, t, schedule, z):  # alphas_cumprod[t - 1] at t = 0 is the last step's
    beta, alpha, abar = schedule.betas[t], schedule.alphas[t], schedule.alphas_cumprod[t]
    abar_prev = schedule.alphas_cumprod[t - 1]
    x0_hat = (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()
    mean = (abar_prev.sqrt() * beta * x0_hat + alpha.sqrt() * (1 - abar_prev) * x_t) / (1 - abar)
    return mean + beta.sqrt() * z if t > 0 else mean


def _07_posterior_variance(x_t, eps, t, schedule, z):
    beta, abar, abar_prev = schedule.betas[t], schedule.alphas_cumprod[t], schedule.abar(t - 1)
    mean = _07_posterior_step(x_t, eps, t, schedule, z * 0)
    return mean + ((1 - abar_prev) / (1 - abar) * beta).sqrt() * z if t > 0 else mean


def test_07_check_ddpm_step_accepts_both_forms_of_the_mean_and_the_reference(capsys):
    exercises.check_ddpm_step(_07_posterior_step)
    exercises.check_ddpm_step(_ddpm_step_right)
    exercises.check_ddpm_step(exercises.ddpm_step)
    assert capsys.readouterr().out.count("Correct!") == 3


@pytest.mark.parametrize(
    "wrong,message",
    [(_07_wrapped_abar, "schedule.abar\\(t - 1\\)"), (_07_posterior_variance, "posterior's variance")],
)
def test_07_check_ddpm_step_rejects_the_posterior_forms_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_ddpm_step(wrong)


def test_07_reference_ddpm_step_is_the_packages_step_with_its_noise():
    from gencourse.diffusion import NoiseSchedule, ddpm_step

    schedule = NoiseSchedule(100, "cosine")
    x_t, eps, z = torch.randn(3, 4, 2).unbind(0)
    for t in (99, 10, 0):
        assert torch.allclose(exercises.ddpm_step(x_t, eps, t, schedule, z), ddpm_step(x_t, eps, t, schedule, noise=z))


def test_07_check_guided_eps_accepts_the_reference(capsys):
    exercises.check_guided_eps(exercises.guided_eps)
    exercises.check_guided_eps(lambda c, u, w: w * c + (1 - w) * u)
    assert capsys.readouterr().out.count("Correct!") == 2


@pytest.mark.parametrize(
    "wrong,message",
    [
        (lambda c, u, w: c + w * (u - c), "swapped roles"),
        (lambda c, u, w: (1 + w) * c - w * u, "Ho & Salimans"),
        (lambda c, u, w: u + w * c, "a difference"),
        (lambda c, u, w: -(u + w * (c - u)), "sign is flipped"),
        (lambda c, u, w: (u + w * (c - u))[0], "shape"),
    ],
)
def test_07_check_guided_eps_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_guided_eps(wrong)


def _07_flow_matching_loss(net, x1, mistake=None):
    x0 = torch.randn_like(x1)
    t = torch.rand(len(x1), device=x1.device)
    x_t = (1 - t[:, None]) * x0 + t[:, None] * x1
    if mistake == "swapped time":
        x_t = (1 - t[:, None]) * x1 + t[:, None] * x0
    v = net(x_t, t[:, None] if mistake == "t [B, 1]" else t)
    target = {"x0 - x1": x0 - x1, "data": x1, "x1 - x_t": x1 - x_t}.get(mistake, x1 - x0)
    error = (v - target).pow(2)
    if mistake == "sum":
        return error.sum()
    if mistake == "detached":
        return error.mean().detach()
    return error.mean()


def test_07_check_flow_matching_loss_accepts_the_reference_and_the_package(capsys):
    from gencourse.diffusion import flow_matching_loss

    exercises.check_flow_matching_loss(_07_flow_matching_loss)
    exercises.check_flow_matching_loss(flow_matching_loss)
    assert capsys.readouterr().out.count("Correct!") == 2


@pytest.mark.parametrize(
    "mistake,message",
    [
        ("swapped time", "time runs the other way"),
        ("t [B, 1]", "one time per example"),
        ("x0 - x1", "wrong way round"),
        ("data", "not the data x1"),
        ("x1 - x_t", "not x1 - x_t"),
        ("sum", "not a sum"),
        ("detached", "no gradient"),
    ],
)
def test_07_check_flow_matching_loss_rejects_typical_mistakes(mistake, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_flow_matching_loss(lambda net, x1: _07_flow_matching_loss(net, x1, mistake))


def test_07_check_flow_matching_loss_leaves_the_global_random_state_alone():
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    exercises.check_flow_matching_loss(_07_flow_matching_loss)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("check", ["check_guided_eps", "check_flow_matching_loss"])
def test_07_new_exercise_stubs_say_not_done_yet(check):
    def stub(*args):
        raise NotImplementedError("your turn")

    with pytest.raises(ExerciseError, match="not written yet"):
        getattr(exercises, check)(stub)


def test_06_reference_bits_per_dim_passes_its_check(capsys):
    from gencourse import flows

    exercises.check_bits_per_dim(flows.dequantized_bits_per_dim)
    out = capsys.readouterr().out
    assert "Correct" in out and "-log p(x) + D log 256" in out
