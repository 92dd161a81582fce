"""Bad inputs at every family's public entry points (build, train step, sample, likelihood, metrics).

A hostile but realistic user passes wrong shapes, dtypes, ranges, NaN and empty batches. Each probe must
end in an error that names the argument and what was expected, or in a documented, correct result:
never a NaN or a wrong number returned silently, never an error from deep inside torch.
"""

import numpy as np
import pytest
import torch

from gencourse import data, flows, gan, metrics, vae
from gencourse import diffusion as D
from gencourse.nn import TimeMLP
from gencourse.train import fit

NAN = float("nan")


def unit(*shape):
    """Images in [0, 1] (what the VAEs, flows and the judge take)."""
    return torch.rand(*shape, generator=torch.Generator().manual_seed(0))


def nans(*shape):
    return torch.full(shape, NAN)


def expect(probe, error, message):
    """``probe()`` raises ``error`` whose message matches ``message``: that is the whole contract."""
    with pytest.raises(error, match=message):
        probe()


# ---- data --------------------------------------------------------------------------------------

TINY = data.ImageData(torch.zeros(5, 1, 4, 4, dtype=torch.uint8), torch.arange(5))


@pytest.mark.parametrize(
    ("probe", "error", "message"),
    [
        (lambda: data.toy2d("ring8", 3.0), TypeError, r"n must be a whole number \(an int\), got 3\.0.*int\(n\)"),
        (lambda: data.toy2d("ring8", 2.5), TypeError, r"n must be a whole number"),
        (lambda: data.toy2d("ring8", True), TypeError, r"n must be a whole number.*bool"),
        (lambda: data.toy2d("ring8", "10"), TypeError, r"n must be a whole number.*str"),
        (lambda: data.toy2d("ring8", -1), ValueError, r"n must be a positive integer, got -1"),
        (lambda: data.toy2d("ring8", 5, seed=1.5), TypeError, r"seed must be an int or None, got 1\.5"),
        (lambda: TINY.tensors("unit", -1), ValueError, r"n must be a positive integer, got -1"),
        (lambda: data.binarize(unit(2, 1, 4, 4) * 255), ValueError, r"x must lie in \[0, 1\].*x / 255"),
        (lambda: data.binarize(nans(2, 3)), ValueError, r"x holds NaN values.*NaN inputs"),
        (lambda: data.binarize(torch.ones(2, 3, dtype=torch.int64)), TypeError, r"x must be a floating-point"),
        (lambda: data.dequantize(unit(2, 3)), ValueError, r"uint8"),
        (lambda: data.logit_transform(unit(2, 3) * 255), ValueError, r"x must lie in \[0, 1\].*x / 255"),
        (lambda: data.logit_transform(unit(2, 3) * 2 - 1), ValueError, r"x must lie in \[0, 1\].*from_symmetric"),
        (lambda: data.logit_transform(torch.zeros(0, 3)), ValueError, r"x is empty"),
    ],
)
def test_data_entry_points_refuse_bad_input(probe, error, message):
    expect(probe, error, message)


def test_data_documented_results_for_edge_inputs():
    assert data.toy2d("ring8", np.int64(3), seed=np.int64(1)).shape == (3, 2)  # NumPy integers are integers
    assert torch.equal(data.toy2d("ring8", np.int64(3), seed=np.int64(1)), data.toy2d("ring8", 3, seed=1))
    assert TINY.tensors("unit", 99)[0].shape == (5, 1, 4, 4)  # n beyond the split: all of it
    # the logit transform's domain is slightly wider than [0, 1]: values an inverse maps back are accepted
    assert torch.isfinite(data.logit_transform(torch.tensor([[-0.01, 1.01]]), alpha=0.05)[0]).all()


# ---- VAE ---------------------------------------------------------------------------------------


def small_vae(**kwargs):
    torch.manual_seed(0)
    return vae.VAE.mlp(latent_dim=3, hidden=(16,), **kwargs)


X = unit(4, 1, 28, 28)
BAD_IMAGES = [
    (X * 255, ValueError, r"x must lie in \[0, 1\], got values in \[.*255\]: pixels in \[0, 255\]\? Use x / 255"),
    (X * 2 - 1, ValueError, r"x must lie in \[0, 1\].*from_symmetric"),
    (nans(4, 1, 28, 28), ValueError, r"x holds NaN values\. Likely causes: NaN inputs"),
    (torch.full((4, 1, 28, 28), float("inf")), ValueError, r"x must lie in \[0, 1\].*inf"),
    ((X * 255).to(torch.uint8), TypeError, r"x must be a floating-point tensor, got torch\.uint8.*/ 255"),
    (X.double(), TypeError, r"x is torch\.float64 but the model's weights are torch\.float32"),
    (X[:0], ValueError, r"x is empty \(shape \(0, 1, 28, 28\)\)"),
    (X.view(4, 784), ValueError, r"expected inputs of shape \[B, 1, 28, 28\]"),
]


@pytest.mark.parametrize(("x", "error", "message"), BAD_IMAGES)
@pytest.mark.parametrize("entry", ["elbo", "elbo_terms", "iwae_bound", "encode", "reconstruct"])
def test_vae_entry_points_refuse_bad_images(entry, x, error, message):
    model = small_vae()
    call = {"iwae_bound": lambda: model.iwae_bound(x, 3)}.get(entry, lambda: getattr(model, entry)(x))
    expect(call, error, message)


def test_vae_range_checks_follow_the_likelihood():
    # a Gaussian decoder models real-valued x: any finite values are fine, NaN is not
    gaussian = small_vae(likelihood="gaussian", x_shape=(6,))
    assert torch.isfinite(gaussian.elbo(torch.randn(4, 6) * 100)).all()
    expect(lambda: gaussian.elbo(nans(4, 6)), ValueError, r"x holds NaN values.*NaN inputs")
    # grey levels in [0, 1] are documented as fine for the Bernoulli decoder
    assert torch.isfinite(small_vae().elbo(X)).all()
    autoencoder = vae.Autoencoder(hidden=(16,))
    expect(lambda: autoencoder.loss(X * 255), ValueError, r"x must lie in \[0, 1\]")


@pytest.mark.parametrize(
    ("probe", "error", "message"),
    [
        (lambda m: m.sample(-1), ValueError, r"n must be a positive integer, got -1"),
        (lambda m: m.sample(2.0), TypeError, r"n must be a whole number.*int\(n\)"),
        (lambda m: m.iwae_bound(X, 0), ValueError, r"k must be a positive integer, got 0"),
        (lambda m: m.iwae_bound(X, 2.5), TypeError, r"k must be a whole number"),
    ],
)
def test_vae_counts(probe, error, message):
    expect(lambda: probe(small_vae()), error, message)


@pytest.mark.parametrize(
    ("probe", "error", "message"),
    [
        (lambda m: m.elbo(X[:2], torch.tensor([0, 5])), ValueError, r"y must be .*in \[0, 3\), got values in \[0, 5\]"),
        (lambda m: m.elbo(X[:2], torch.tensor([0, -1])), ValueError, r"y must be .*in \[0, 3\)"),
        (lambda m: m.elbo(X[:2], torch.tensor([0.0, 1.0])), TypeError, r"y must be an integer tensor"),
        (
            lambda m: m.elbo(X[:2], torch.tensor([0, 1, 2])),
            ValueError,
            r"y must be an integer tensor \[2\].*shape \(3,\)",
        ),
        (lambda m: m.elbo(X[:2]), ValueError, r"needs labels y"),
        (lambda m: m.sample(2, y=5), ValueError, r"y must be .*in \[0, 3\), got values in \[5, 5\]"),
        (lambda m: m.sample(2, y=torch.tensor([0, 1, 2])), ValueError, r"y must be an integer tensor \[2\]"),
    ],
)
def test_conditional_vae_labels(probe, error, message):
    expect(lambda: probe(small_vae(num_classes=3)), error, message)


@pytest.mark.parametrize(
    ("batch", "binarize", "error", "message"),
    [
        ((X * 255, torch.zeros(4)), True, ValueError, r"x must lie in \[0, 1\].*x / 255"),  # binarized to all ones
        ((X * 255, torch.zeros(4)), False, ValueError, r"x must lie in \[0, 1\].*x / 255"),
        ((nans(4, 1, 28, 28), torch.zeros(4)), True, ValueError, r"x holds NaN values.*NaN inputs"),
    ],
)
def test_vae_training_step_refuses_bad_batches(batch, binarize, error, message):
    expect(lambda: fit(small_vae(), vae.elbo_loss(binarize_data=binarize), [batch], steps=1), error, message)


# ---- flows -------------------------------------------------------------------------------------


def image_flow():
    torch.manual_seed(0)
    return flows.multiscale_flow((1, 8, 8), steps=(1, 1), hidden=(4, 4), blocks=(1, 1)).eval()


def toy_flow():
    torch.manual_seed(0)
    return flows.coupling_flow_2d(2, 8).eval()


IMG = unit(3, 1, 8, 8)


@pytest.mark.parametrize(
    ("probe", "error", "message"),
    [
        # the defect: images in [0, 255] or [-1, 1] gave NaN log-likelihoods
        (lambda: image_flow().log_prob(IMG * 255), ValueError, r"x must lie in \[0, 1\].*x / 255"),
        (lambda: image_flow().log_prob(IMG * 2 - 1), ValueError, r"x must lie in \[0, 1\].*from_symmetric"),
        (lambda: image_flow().log_prob(nans(3, 1, 8, 8)), ValueError, r"x holds NaN values.*NaN inputs"),
        (lambda: image_flow().log_prob((IMG * 255).to(torch.uint8)), TypeError, r"x must be a floating-point.*dequant"),
        (lambda: image_flow().log_prob(IMG.double()), TypeError, r"x is torch\.float64 but the model's weights"),
        (lambda: image_flow().log_prob(IMG[:0]), ValueError, r"x is empty"),
        (lambda: image_flow().log_prob(unit(3, 1, 4, 4)), ValueError, r"models inputs of shape \[B, 1, 8, 8\]"),
        (lambda: toy_flow().log_prob(nans(3, 2)), ValueError, r"x holds NaN values.*NaN inputs"),
        (lambda: toy_flow().log_prob(torch.tensor([[0.0, float("inf")]])), ValueError, r"x must be finite.*inf"),
        (lambda: toy_flow().log_prob(torch.randn(3, 3)), ValueError, r"models inputs of shape \[B, 2\]"),
        (lambda: toy_flow().sample(-1), ValueError, r"n must be a positive integer, got -1"),
        (lambda: toy_flow().sample(2.0), TypeError, r"n must be a whole number"),
        (lambda: toy_flow().sample(3, temperature=NAN), ValueError, r"temperature must be a finite number >= 0"),
        (lambda: toy_flow().sample(3, temperature=-1.0), ValueError, r"temperature must be a finite number >= 0"),
        (lambda: flows.multiscale_flow((1, 27, 27)), ValueError, r"shape \(1, 27, 27\).*multiples of 4"),
        (lambda: flows.multiscale_flow(steps=(1, 1, 1)), ValueError, r"steps, hidden and blocks need one entry"),
        (lambda: flows.coupling_flow_2d(0), ValueError, r"num_layers must be a positive integer"),
        (lambda: flows.fit_gaussian(torch.randn(1, 2)), ValueError, r"x must be \[N, D\] with N > D"),
        (lambda: flows.fit_gaussian(nans(5, 2)), ValueError, r"x holds NaN"),
        (
            lambda: flows.evaluate_bits_per_dim(image_flow(), torch.zeros(0, 1, 8, 8, dtype=torch.uint8)),
            ValueError,
            r"images is empty",
        ),
        (lambda: flows.evaluate_bits_per_dim(image_flow(), IMG), ValueError, r"uint8"),
        (lambda: flows.dequantized_bpd_loss(image_flow(), IMG), ValueError, r"uint8"),
    ],
)
def test_flow_entry_points_refuse_bad_input(probe, error, message):
    expect(probe, error, message)


def test_flow_training_step_refuses_a_nan_batch():
    expect(lambda: fit(toy_flow(), flows.nll_loss, [nans(8, 2)], steps=1), ValueError, r"x holds NaN.*NaN inputs")


def test_flow_valid_edges_still_work():
    # a flow's own samples may leave [0, 1] by a hair (the inverse logit's alpha): they are still in its domain
    flow = image_flow()
    assert torch.isfinite(flow.log_prob(flow.sample(4).clamp(-1e-7, 1 + 1e-7))).all()
    assert flow.sample(2, temperature=0.0).shape == (2, 1, 8, 8)  # T = 0: the mode, documented


# ---- diffusion ---------------------------------------------------------------------------------


def ddpm(num_classes=None, clip=None):
    torch.manual_seed(0)
    return D.Diffusion(TimeMLP(2, hidden=8, depth=1, num_classes=num_classes), D.NoiseSchedule(10), (2,), clip=clip)


def flow_matching():
    torch.manual_seed(0)
    return D.FlowMatching(TimeMLP(2, hidden=8, depth=1), (2,))


@pytest.mark.parametrize(
    ("probe", "error", "message"),
    [
        (lambda: ddpm().loss(nans(4, 2)), ValueError, r"x0 holds NaN values.*NaN inputs"),
        (lambda: ddpm().loss(torch.randn(0, 2)), ValueError, r"x0 is empty"),
        (lambda: ddpm().loss(torch.randn(4, 3)), ValueError, r"x0 must have shape \[B, 2\]"),
        (lambda: ddpm().loss(torch.randn(4, 2).double()), TypeError, r"x0 is torch\.float64"),
        (lambda: ddpm().loss(torch.randint(0, 9, (4, 2))), TypeError, r"x0 must be a floating-point"),
        (lambda: ddpm(clip=1.0).loss(torch.rand(4, 2) * 255), ValueError, r"x0 must lie in \[-1, 1\].*127\.5"),
        (lambda: ddpm(3).loss(torch.randn(2, 2), torch.tensor([0, 7])), ValueError, r"labels must lie in \[0, 3\]"),
        (lambda: ddpm().sample(-1), ValueError, r"n must be a positive integer, got -1"),
        (lambda: ddpm().sample(2.0), TypeError, r"n must be a whole number"),
        (lambda: ddpm().sample(3, steps=2.5), TypeError, r"steps must be a whole number .* in \[1, T=10\]"),
        (lambda: ddpm().sample(3, steps=0), ValueError, r"steps must be in \[1, T=10\]"),
        (lambda: ddpm().sample(3, y=torch.tensor([0, 1, 2]), guidance=2.0), ValueError, r"unconditional.*without y"),
        (lambda: ddpm(3).sample(3, y=torch.tensor([0, 1])), ValueError, r"y must be an integer tensor \[3\]"),
        (lambda: ddpm(3).sample(3, y=torch.tensor([0, 1, 9])), ValueError, r"labels must lie in \[0, 3\]"),
        (lambda: flow_matching().loss(nans(4, 2)), ValueError, r"x1 holds NaN values.*NaN inputs"),
        (lambda: flow_matching().loss(torch.randn(4, 5)), ValueError, r"x1 must have shape \[B, 2\]"),
        (lambda: flow_matching().sample(0), ValueError, r"n must be a positive integer, got 0"),
        (lambda: flow_matching().sample(2, steps=0), ValueError, r"steps must be >= 1"),
        (lambda: D.NoiseSchedule(1), ValueError, r"T .* must be an integer >= 2"),
        (lambda: D.q_sample(torch.randn(2, 2), torch.tensor([0.5, 1.0]), None, D.NoiseSchedule(10)), TypeError, "t"),
        (lambda: D.q_sample(torch.randn(2, 2), torch.tensor([0, 10]), None, D.NoiseSchedule(10)), ValueError, "t"),
    ],
)
def test_diffusion_entry_points_refuse_bad_input(probe, error, message):
    expect(probe, error, message)


def test_latent_diffusion_checks_through_its_parts():
    torch.manual_seed(0)
    autoencoder = vae.VAE.mlp(latent_dim=2, hidden=(8,))
    model = D.LatentDiffusion(autoencoder, ddpm())
    expect(lambda: model.encode(X * 255), ValueError, r"x must lie in \[0, 1\]")
    expect(lambda: model.loss(nans(4, 2)), ValueError, r"x0 holds NaN values")
    expect(lambda: model.sample(-3), ValueError, r"n must be a positive integer")
    assert model.sample(2, steps=2).shape == (2, 1, 28, 28)


def test_diffusion_training_step_refuses_a_nan_batch():
    model = ddpm()
    expect(lambda: fit(model, lambda m, b: m.loss(b), [nans(8, 2)], steps=1), ValueError, r"x0 holds NaN")


# ---- GAN ---------------------------------------------------------------------------------------


def toy_gan(num_classes=None):
    torch.manual_seed(0)
    return gan.GAN(
        gan.MLPGenerator(hidden=(16, 16), num_classes=num_classes),
        gan.MLPDiscriminator(hidden=(16, 16), num_classes=num_classes),
    )


def image_gan():
    torch.manual_seed(0)
    return gan.GAN(gan.DCGenerator(8, 4), gan.DCDiscriminator(4))


@pytest.mark.parametrize(
    ("probe", "error", "message"),
    [
        (lambda: toy_gan().sample(), TypeError, r"sample\(\) needs n, the number of samples"),
        (lambda: toy_gan().sample(-1), ValueError, r"n must be a positive integer, got -1"),
        (lambda: toy_gan().sample(2.0), TypeError, r"n must be a whole number"),
        (lambda: toy_gan().sample(3, z=torch.randn(4, 2)), ValueError, r"z must be \[3, 2\].*\(4, 2\)"),
        (lambda: toy_gan().sample(z=torch.randn(4, 5)), ValueError, r"z must be \[n, 2\] \(latent_dim=2\)"),
        (lambda: toy_gan().sample(z=nans(4, 2)), ValueError, r"z holds NaN values"),
        (lambda: toy_gan().sample(2, labels=torch.tensor([0, 1])), ValueError, r"unconditional"),
        (lambda: toy_gan(3).sample(4, labels=torch.tensor([0, 1, 2, 5])), ValueError, r"labels must be .*\[0, 3\)"),
        (lambda: toy_gan(3).sample(2, labels=torch.tensor([0.0, 1.0])), TypeError, r"labels must be an integer tensor"),
        (lambda: toy_gan(3).sample(2, labels=torch.tensor([0, 1, 2])), ValueError, r"labels must be .*\[2\]"),
    ],
)
def test_gan_sampling_refuses_bad_input(probe, error, message):
    expect(probe, error, message)


@pytest.mark.parametrize("kind", gan.KINDS)
def test_an_exploding_but_finite_gan_loss_stops_training(kind):
    # the defect: lr = 1e3 finished with g_loss 2e14 and no warning
    with pytest.raises(
        gan.DivergedLossError, match=r"(?s)loss reached .* beyond 1e\+06.*learning rate is too high \(lr=1000\)"
    ):
        gan.train_gan(toy_gan(), lambda: data.toy2d("ring8", 32, seed=0), kind=kind, steps=50, lr=1e3)


def test_a_sane_gan_training_stays_far_below_the_divergence_bound():
    history = gan.train_gan(toy_gan(), lambda: data.toy2d("ring8", 32), steps=30, lr=2e-3)
    assert max(abs(v) for key in ("d_loss", "g_loss") for v in history[key]) < 1e2 < gan.MAX_LOSS


@pytest.mark.parametrize(
    ("make", "batches", "error", "message", "kwargs"),
    [
        (toy_gan, [nans(8, 2)], ValueError, r"the real data holds NaN values.*NaN inputs", {}),
        (
            image_gan,
            [unit(8, 1, 28, 28) * 255],
            ValueError,
            r"real data must lie in \[-1, 1\].*generator's samples",
            {},
        ),
        (image_gan, [unit(8, 784)], ValueError, r"real batches have shape \(8, 784\).*\(8, 1, 28, 28\)", {}),
        (image_gan, [(unit(8, 1, 28, 28) * 255).to(torch.uint8)], TypeError, r"real data must be a floating-point", {}),
        (lambda: toy_gan(3), [(torch.randn(4, 2), torch.tensor([0, 1, 2, 3]))], ValueError, r"labels of the real", {}),
        (toy_gan, [torch.randn(8, 2)], ValueError, r"n_critic must be a positive integer", {"n_critic": 0}),
    ],
)
def test_gan_training_refuses_bad_data(make, batches, error, message, kwargs):
    expect(lambda: gan.train_gan(make(), batches, epochs=1, **kwargs), error, message)


# ---- metrics -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("probe", "error", "message"),
    [
        # the defects: (0.0, 0.0) for NaN features, nan for an empty set
        (lambda: metrics.precision_recall(nans(10, 3), torch.randn(10, 3)), ValueError, r"real_features holds NaN"),
        (lambda: metrics.precision_recall(torch.randn(10, 3), nans(10, 3)), ValueError, r"fake_features holds NaN"),
        (lambda: metrics.precision_recall(torch.randn(0, 3), torch.randn(0, 3)), ValueError, r"needs more than k"),
        (lambda: metrics.precision_recall(torch.randn(10), torch.randn(10)), ValueError, r"\[N, D\] and \[M, D\]"),
        (lambda: metrics.inception_score(torch.zeros(0, 10)), ValueError, r"probs is empty"),
        (lambda: metrics.inception_score(nans(4, 10)), ValueError, r"probs holds NaN.*NaN inputs"),
        (lambda: metrics.inception_score(torch.rand(4, 10)), ValueError, r"rows summing to 1"),
        (lambda: metrics.fid(nans(5, 3), torch.randn(5, 3)), ValueError, r"features_a holds NaN.*NaN inputs"),
        (lambda: metrics.fid(torch.randn(1, 3), torch.randn(5, 3)), ValueError, r"N >= 2"),
        (lambda: metrics.frechet_distance(torch.zeros(2), torch.eye(3), torch.zeros(2), torch.eye(2)), ValueError, "D"),
        (lambda: metrics.kl_divergence(torch.tensor([0.5, NAN]), torch.tensor([0.5, 0.5])), ValueError, "finite"),
        (lambda: metrics.bits_per_dim(NAN, 784), ValueError, r"nll_nats holds NaN"),
        (lambda: metrics.bits_per_dim(torch.tensor([]), 784), ValueError, r"nll_nats is empty"),
        (lambda: metrics.bits_per_dim(80.0, 0), ValueError, r"num_dims must be a positive integer"),
        (lambda: metrics.mode_metrics(torch.zeros(0, 2), data.toy2d_modes("ring8")), ValueError, r"samples is empty"),
        (lambda: metrics.mode_metrics(nans(5, 2), data.toy2d_modes("ring8")), ValueError, r"samples holds NaN"),
        (lambda: metrics.judge().features(torch.zeros(0, 1, 28, 28)), ValueError, r"images is empty"),
        (lambda: metrics.judge().probs(nans(2, 1, 28, 28)), ValueError, r"images holds NaN.*NaN inputs"),
    ],
)
def test_metrics_refuse_bad_input(probe, error, message):
    expect(probe, error, message)


def test_metrics_documented_results_for_edge_inputs():
    assert metrics.inception_score(torch.full((1, 10), 0.1)) == pytest.approx(1.0)  # one prediction: IS = 1
    assert metrics.bits_per_dim(float("inf"), 784) == float("inf")  # probability 0: infinitely many bits
    assert metrics.kl_divergence(torch.zeros(0, 3), torch.zeros(0, 3)).shape == (0,)  # no rows, no values
    far = metrics.mode_metrics(torch.full((5, 2), 100.0), data.toy2d_modes("ring8"))
    assert far["high_quality"] == 0 and far["modes"] == 0 and np.isnan(far["kl_uniform"])  # documented NaN
