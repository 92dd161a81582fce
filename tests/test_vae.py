import math

import pytest
import torch
from torch import nn
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from gencourse.vae import (
    VAE,
    Autoencoder,
    elbo_loss,
    estimate_nll,
    gaussian_kl,
    gaussian_kl_per_dim,
    gradient_estimates,
    log_mean_exp,
    reparameterize,
)


def test_gaussian_kl_equals_torch_kl_divergence():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(64, 8, generator=g) * 2, torch.randn(64, 8, generator=g)
    q = Normal(mu, (0.5 * logvar).exp())
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = kl_divergence(q, p).sum(-1)
    assert gaussian_kl(mu, logvar).shape == (64,)
    assert torch.allclose(gaussian_kl(mu, logvar), expected, atol=1e-5)
    assert torch.allclose(gaussian_kl_per_dim(mu, logvar), kl_divergence(q, p), atol=1e-5)


def test_gaussian_kl_is_zero_only_at_the_prior():
    assert gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)).abs().max() == 0
    assert (gaussian_kl(torch.full((3, 4), 0.1), torch.zeros(3, 4)) > 0).all()


def test_gaussian_kl_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 5))


def test_reparameterize_has_the_right_mean_and_variance():
    torch.manual_seed(0)
    n = 200_000
    mu = torch.tensor([1.0, -2.0, 0.0]).expand(n, 3)
    logvar = torch.tensor([math.log(4.0), math.log(0.25), 0.0]).expand(n, 3)
    z = reparameterize(mu, logvar)
    assert z.shape == (n, 3)
    assert torch.allclose(z.mean(0), torch.tensor([1.0, -2.0, 0.0]), atol=0.02)
    assert torch.allclose(z.var(0), torch.tensor([4.0, 0.25, 1.0]), rtol=0.02)


def test_reparameterize_passes_gradients_to_mu_and_logvar():
    mu, logvar = torch.zeros(5, 2, requires_grad=True), torch.zeros(5, 2, requires_grad=True)
    reparameterize(mu, logvar).pow(2).sum().backward()
    assert mu.grad is not None and logvar.grad is not None and logvar.grad.abs().sum() > 0


def test_log_mean_exp_is_log_of_the_mean():
    w = torch.rand(7, 3) + 0.1
    assert torch.allclose(log_mean_exp(w.log(), 0), w.mean(0).log(), atol=1e-6)
    assert torch.isfinite(log_mean_exp(torch.tensor([-1000.0, -1001.0]))).all()  # no underflow


def small_vae(likelihood="bernoulli", num_classes=0):
    torch.manual_seed(0)
    return VAE.mlp(latent_dim=3, hidden=(16,), x_shape=(6,), likelihood=likelihood, num_classes=num_classes)


def test_iwae_with_one_sample_is_the_elbo():
    # elbo() uses the closed-form KL, iwae_bound(x, 1) the sampled log p(z) - log q(z|x): equal on average
    model, x = small_vae(), torch.bernoulli(torch.full((32, 6), 0.3))
    torch.manual_seed(1)
    with torch.no_grad():  # 2000 independent draws for each example, as one batch
        elbos = model.elbo(x.repeat(2000, 1)).view(2000, -1)
        iwae1 = model.iwae_bound(x.repeat(2000, 1), 1).view(2000, -1)
    stderr = (elbos.var(0) / 2000 + iwae1.var(0) / 2000).sqrt()
    assert ((elbos.mean(0) - iwae1.mean(0)).abs() < 4 * stderr).all()


def test_iwae_bound_does_not_decrease_with_k():
    torch.manual_seed(0)
    model = VAE.mlp(latent_dim=3, hidden=(16,), x_shape=(30,))
    model.decoder.net[-1].weight.data *= 10  # a sharp likelihood: the posterior is far from q, the bound loose
    x = torch.bernoulli(torch.full((64, 30), 0.3))
    with torch.no_grad():
        bounds = [torch.stack([model.iwae_bound(x, k) for _ in range(10)]).mean().item() for k in (1, 5, 50, 500)]
    assert all(b < c for b, c in zip(bounds, bounds[1:])), bounds


def test_iwae_bound_is_chunk_independent_in_expectation_and_shape():
    model, x = small_vae(), torch.bernoulli(torch.full((8, 6), 0.5))
    with torch.no_grad():
        a = torch.stack([model.iwae_bound(x, 300, chunk=300) for _ in range(10)]).mean(0)
        b = torch.stack([model.iwae_bound(x, 300, chunk=7) for _ in range(10)]).mean(0)
    assert a.shape == (8,)
    assert torch.allclose(a, b, atol=0.05)


class LinearEncoder(nn.Module):
    """q(z|x) = N(A (x - b), diag(exp(logvar))): the family that contains the exact posterior of a
    linear-Gaussian model whose decoder weight has orthogonal columns."""

    def __init__(self, A, b, logvar):
        super().__init__()
        self.A, self.b, self.logvar = nn.Parameter(A), nn.Parameter(b), nn.Parameter(logvar)

    def forward(self, x, c=None):
        mu = (x - self.b) @ self.A.T
        return torch.cat([mu, self.logvar.expand_as(mu)], dim=1)


class LinearDecoder(nn.Linear):
    def forward(self, z, c=None):
        return super().forward(z)


def linear_gaussian(optimal_encoder: bool):
    """p(z) = N(0, I_2), p(x|z) = N(W z + b, s^2 I_5), with log p(x) = log N(x; b, W W^T + s^2 I)."""
    g = torch.Generator().manual_seed(0)
    d, D, s = 2, 5, 0.5
    q, _ = torch.linalg.qr(torch.randn(D, d, generator=g))
    W, b = q * torch.tensor([2.0, 1.0]), torch.randn(D, generator=g)
    decoder = LinearDecoder(d, D)
    decoder.weight.data, decoder.bias.data = W, b
    post_var = 1 / (1 + (W * W).sum(0) / s**2)  # diagonal because W's columns are orthogonal
    if optimal_encoder:
        encoder = LinearEncoder(post_var[:, None] * W.T / s**2, b.clone(), post_var.log())
    else:  # a reasonable but wrong q: mean too small, variance too large
        encoder = LinearEncoder(0.5 * post_var[:, None] * W.T / s**2, b.clone(), (3 * post_var).log())
    model = VAE(encoder, decoder, d, x_shape=(D,), likelihood="gaussian", sigma=s)
    marginal = MultivariateNormal(b, W @ W.T + s**2 * torch.eye(D))
    x = marginal.sample((256,))
    return model, x, marginal.log_prob(x)


def test_elbo_is_exact_when_q_is_the_true_posterior():
    model, x, log_px = linear_gaussian(optimal_encoder=True)
    torch.manual_seed(0)
    with torch.no_grad():  # every importance weight p(x, z) / q(z|x) is then exactly p(x)
        assert torch.allclose(model.iwae_bound(x, 1), log_px, atol=1e-4)
        assert torch.allclose(model.iwae_bound(x, 10), log_px, atol=1e-4)
        elbo = model.elbo(x.repeat(2000, 1)).view(2000, -1).mean(0)
    assert torch.allclose(elbo, log_px, atol=0.1)


def test_elbo_and_iwae_stay_below_log_px_and_approach_it_as_k_grows():
    model, x, log_px = linear_gaussian(optimal_encoder=False)
    torch.manual_seed(0)
    with torch.no_grad():
        elbo = model.elbo(x.repeat(1000, 1)).view(1000, -1).mean(0)
        gaps = {k: (log_px - model.iwae_bound(x, k)).mean().item() for k in (1, 10, 100, 1000)}
    assert (elbo < log_px).all()  # per example: the ELBO gap is KL(q || posterior) > 0 for every x
    assert 0 < gaps[1000] < gaps[100] < gaps[10] < gaps[1], gaps
    assert gaps[1000] < 0.05 * gaps[1], gaps


def test_estimate_nll_matches_the_exact_likelihood():
    model, x, log_px = linear_gaussian(optimal_encoder=False)
    torch.manual_seed(0)
    nll, stderr = estimate_nll(model, x, k=2000, batch_size=64)
    assert abs(nll - (-log_px.mean().item())) < 0.02
    assert abs(stderr - log_px.std().item() / math.sqrt(len(x))) < 0.01


def test_gaussian_likelihood_matches_torch_normal():
    model = small_vae("gaussian")
    x, z = torch.randn(4, 6), torch.randn(4, 3)
    with torch.no_grad():
        mean = model.decode(z)
        expected = Normal(mean, model.log_sigma.exp()).log_prob(x).sum(1)
        assert torch.allclose(model.log_px_given_z(x, z), expected, atol=1e-5)


def test_conditional_vae_uses_the_label():
    model = small_vae(num_classes=10)
    z = torch.randn(1, 3).expand(10, 3)
    images = model.decode(z, torch.arange(10))
    assert images.shape == (10, 6)
    assert (images[1:] - images[0]).abs().amax(1).min() > 1e-4  # same z, different digits
    assert model.sample(5, y=3).shape == (5, 6)
    with pytest.raises(ValueError, match="needs labels"):
        model.elbo(torch.rand(2, 6))
    with pytest.raises(ValueError, match="not conditional"):
        small_vae().elbo(torch.rand(2, 6), torch.zeros(2))


def test_conv_vae_shapes_and_sample_range():
    torch.manual_seed(0)
    model = VAE.conv(latent_dim=4, ch=4, num_classes=10)
    x, y = torch.bernoulli(torch.full((3, 1, 28, 28), 0.2)), torch.tensor([0, 1, 2])
    mu, logvar = model.encode(x, y)
    assert mu.shape == logvar.shape == (3, 4)
    assert model.elbo(x, y).shape == (3,) and (model.elbo(x, y) < 0).all()  # Bernoulli: log p(x) < 0
    samples = model.sample(6, y=7)
    assert samples.shape == (6, 1, 28, 28) and samples.min() >= 0 and samples.max() <= 1
    binary = model.sample(6, y=7, mean=False)
    assert set(binary.unique().tolist()) <= {0.0, 1.0}


def test_wrong_input_shape_says_what_was_expected():
    with pytest.raises(ValueError, match=r"\[B, 1, 28, 28\]"):
        VAE.mlp(latent_dim=2, hidden=(8,)).encode(torch.rand(4, 784))


def test_unknown_likelihood_is_rejected():
    with pytest.raises(ValueError, match="bernoulli"):
        VAE.mlp(latent_dim=2, hidden=(8,), likelihood="poisson")


def test_autoencoder_loss_is_the_binary_cross_entropy():
    torch.manual_seed(0)
    ae = Autoencoder(code_dim=2, hidden=(16,), x_shape=(6,))
    x = torch.bernoulli(torch.full((5, 6), 0.5))
    assert ae.encode(x).shape == (5, 2)
    x_hat = ae(x)
    expected = nn.functional.binary_cross_entropy(x_hat, x, reduction="none").sum(1)
    assert torch.allclose(ae.loss(x), expected, atol=1e-4)


def test_elbo_loss_free_bits_and_warmup():
    model = small_vae()
    x = torch.bernoulli(torch.full((16, 6), 0.3))
    batch = (x, torch.zeros(16, dtype=torch.long))
    torch.manual_seed(3)
    rec, kl = model.elbo_terms(x)
    torch.manual_seed(3)
    loss, logs = elbo_loss(binarize_data=False)(model, batch)
    assert torch.allclose(loss, -rec.mean() + kl.mean(0).sum(), atol=1e-5)
    assert torch.allclose(logs["elbo"], (rec - kl.sum(1)).mean(), atol=1e-5)
    # free bits above every dimension's KL: the KL term is the constant d * lambda
    torch.manual_seed(3)
    loss_fb, _ = elbo_loss(free_bits=100.0, binarize_data=False)(model, batch)
    assert torch.allclose(loss_fb, -rec.mean() + 3 * 100.0, atol=1e-4)
    # KL annealing: beta starts at 0, reaches beta after warmup_steps
    loss_fn = elbo_loss(beta=2.0, warmup_steps=4, binarize_data=False)
    betas = []
    for _ in range(6):
        torch.manual_seed(3)
        betas.append(((loss_fn(model, batch)[0] + rec.mean()) / kl.mean(0).sum()).item())
    assert betas == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.0], abs=1e-4)


def test_gradient_estimators_are_unbiased_and_reparam_has_lower_variance():
    torch.manual_seed(0)
    a = torch.tensor([1.0, -2.0, 0.5])
    f = lambda z: (z * a).sum(1) + 3.0  # grad_mu E[f] = a
    mu, logvar = torch.tensor([0.5, 0.0, -1.0]), torch.tensor([0.0, -1.0, 1.0])
    reparam = gradient_estimates(f, mu, logvar, n=20_000, estimator="reparam")
    assert torch.allclose(reparam, a.expand_as(reparam))  # linear f: zero variance
    for estimator in ("score", "score_baseline"):
        g = gradient_estimates(f, mu, logvar, n=20_000, estimator=estimator)
        assert g.shape == (20_000, 3)
        stderr = g.std(0) / math.sqrt(len(g))
        assert ((g.mean(0) - a).abs() < 4 * stderr).all(), estimator
    score_var = gradient_estimates(f, mu, logvar, n=20_000, estimator="score").var(0)
    assert (gradient_estimates(f, mu, logvar, n=20_000, estimator="score_baseline").var(0) < score_var).all()


def test_gradient_estimators_agree_on_a_nonlinear_function():
    torch.manual_seed(0)
    f = lambda z: -(z - 1.0).pow(2).sum(1)  # E[f] = -|mu - 1|^2 - sum sigma^2, grad = -2 (mu - 1)
    mu, logvar = torch.tensor([0.0, 2.0]), torch.tensor([0.0, 0.0])
    expected = -2 * (mu - 1)
    for estimator in ("reparam", "score", "score_baseline"):
        g = gradient_estimates(f, mu, logvar, n=50_000, estimator=estimator)
        assert ((g.mean(0) - expected).abs() < 4 * g.std(0) / math.sqrt(len(g)) + 1e-6).all(), estimator
    with pytest.raises(ValueError, match="reparam"):
        gradient_estimates(f, mu, logvar, n=10, estimator="pathwise")


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        VAE.mlp(2, (8,))
    with pytest.raises(TypeError):
        Autoencoder(2, (16,))
    with pytest.raises(TypeError):
        elbo_loss(2.0)
