import math

import pytest
import torch
from torch.autograd.functional import jacobian

from gencourse import flows
from gencourse.flows import (
    ActNorm,
    AffineCoupling,
    Flow,
    InvConv1x1,
    LogitTransform,
    Squeeze,
    Unsqueeze,
    checkerboard_mask,
    coupling_flow_2d,
    dequantized_bits_per_dim,
    multiscale_flow,
)
from gencourse.nn import MLP


def randomized(flow: Flow, x: torch.Tensor, scale: float = 0.3, seed: int = 0) -> Flow:
    """A float64 flow whose layers are far from the identity: data-dependent init on ``x``, then every
    parameter perturbed (the zero-initialised coupling outputs would otherwise make the tests trivial)."""
    g = torch.Generator().manual_seed(seed)
    flow = flow.double().train()
    with torch.no_grad():
        flow(x.double())
        for p in flow.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return flow.eval()


def image_flow_small():
    """A two-level multi-scale flow on 1x4x4 images: every kind of image layer, 16 dimensions."""
    return multiscale_flow((1, 4, 4), steps=(2, 2), hidden=(8, 8), blocks=(1, 1), alpha=0.05)


def test_2d_flow_inverts_forward():
    x = torch.randn(256, 2, dtype=torch.float64) * 2
    flow = randomized(coupling_flow_2d(6, 32), x)
    z, _ = flow(x)
    assert (z - x).abs().max() > 0.1  # the flow really transforms its input
    torch.testing.assert_close(flow.inverse(z), x, atol=1e-10, rtol=0)


def test_image_flow_inverts_forward_and_keeps_the_data_shape():
    x = torch.rand(16, 1, 28, 28, dtype=torch.float64)
    flow = randomized(multiscale_flow((1, 28, 28), steps=(2, 2), hidden=(8, 8), blocks=(1, 1)), x, scale=0.05)
    z, log_det = flow(x)
    assert z.shape == x.shape and log_det.shape == (16,)
    torch.testing.assert_close(flow.inverse(z), x, atol=1e-9, rtol=0)


def _autograd_log_det(fn, x):
    """log|det df/dx| of a per-example map, one example at a time, from the full Jacobian."""
    out = []
    for xi in x:
        jac = jacobian(lambda v: fn(v.unsqueeze(0))[0].flatten(), xi)
        out.append(torch.linalg.slogdet(jac.reshape(xi.numel(), xi.numel()))[1])
    return torch.stack(out)


def test_2d_flow_log_det_matches_autograd_jacobian():
    x = torch.randn(8, 2, dtype=torch.float64)
    flow = randomized(coupling_flow_2d(4, 16), x)
    torch.testing.assert_close(flow(x)[1], _autograd_log_det(lambda v: flow(v)[0], x), atol=1e-9, rtol=1e-9)


def test_image_flow_log_det_matches_autograd_jacobian():
    x = torch.rand(4, 1, 4, 4, dtype=torch.float64) * 0.9 + 0.05
    flow = randomized(image_flow_small(), x, scale=0.1)
    torch.testing.assert_close(flow(x)[1], _autograd_log_det(lambda v: flow(v)[0], x), atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize(
    "make_layer",
    [
        lambda: ActNorm(3),
        lambda: ActNorm((3, 4, 4)),
        lambda: InvConv1x1(3),
        lambda: AffineCoupling(checkerboard_mask(4, 4).expand(3, 4, 4), torch.nn.Conv2d(3, 6, 3, padding=1)),
        lambda: Squeeze(),
        lambda: LogitTransform(0.05),
    ],
    ids=["actnorm", "actnorm-per-pixel", "invconv1x1", "coupling-checkerboard", "squeeze", "logit"],
)
def test_each_image_layer_inverts_and_has_the_autograd_log_det(make_layer):
    torch.manual_seed(0)
    x = torch.rand(3, 3, 4, 4, dtype=torch.float64) * 0.9 + 0.05
    layer = make_layer().double().train()
    with torch.no_grad():
        layer(x)  # data-dependent init where there is one
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    layer.eval()
    y, log_det = layer(x)
    torch.testing.assert_close(layer.inverse(y), x, atol=1e-10, rtol=0)
    torch.testing.assert_close(log_det, _autograd_log_det(lambda v: layer(v)[0], x), atol=1e-9, rtol=1e-9)


def test_coupling_log_det_is_the_sum_of_s_over_the_transformed_part():
    torch.manual_seed(0)
    mask = torch.tensor([1.0, 0.0, 1.0, 0.0])
    layer = AffineCoupling(mask, MLP(4, 8, (16,))).double()
    x = torch.randn(5, 4, dtype=torch.float64)
    y, log_det = layer(x)
    s, _ = layer.scale_shift(x * mask)
    torch.testing.assert_close(y[:, mask == 1], x[:, mask == 1])  # the conditioning half passes through
    torch.testing.assert_close(log_det, s[:, mask == 0].sum(1))
    assert s[:, mask == 1].abs().max() == 0


def test_2d_flow_density_integrates_to_one():
    """The mass of the density on a grid over [-10, 10]^2 is ~1, and equals the fraction of the flow's
    own samples that land there (what is missing is in the tails, not lost)."""
    torch.manual_seed(0)
    x = torch.randn(512, 2, dtype=torch.float64) * torch.tensor([1.5, 0.7], dtype=torch.float64) + 0.3
    flow = randomized(coupling_flow_2d(4, 16), x, scale=0.1, seed=1)
    xs = torch.linspace(-10, 10, 301, dtype=torch.float64)
    with torch.no_grad():
        mass = (flow.log_prob(torch.cartesian_prod(xs, xs)).exp().sum() * (xs[1] - xs[0]) ** 2).item()
    inside = (flow.sample(100_000).abs() < 10).all(1).double().mean().item()
    assert abs(mass - 1) < 1e-3
    assert abs(mass - inside) < 2e-3


def test_logit_transform_density_integrates_to_one_on_the_unit_interval():
    """A flow made of the logit alone: the density of x in [0, 1] must include log|dy/dx|."""
    flow = Flow([LogitTransform(0.05)], shape=(1,)).double()
    x = torch.linspace(0, 1, 100001, dtype=torch.float64)[:, None]
    density = flow.log_prob(x).exp()
    mass = torch.trapezoid(density, x[:, 0])
    assert abs(mass.item() - torch.special.erf(torch.tensor(math.log(19) / math.sqrt(2))).item()) < 1e-6


def test_dequantized_bits_per_dim_accounts_for_dequantization():
    # the uniform density on [0, 1)^D (log p = 0) is exactly 8 bits per dimension
    torch.testing.assert_close(dequantized_bits_per_dim(torch.zeros(3), 784), torch.full((3,), 8.0))
    # a density that puts P(k) * 256^D on the cell of each 8-bit value k codes k in -log2 P(k) bits:
    # two equally likely 4-pixel images cost 1 bit, i.e. 1/4 bit per dimension
    log_p = torch.tensor([math.log(0.5) + 4 * math.log(256)])
    torch.testing.assert_close(dequantized_bits_per_dim(log_p, 4), torch.tensor([0.25]))


def test_evaluate_bits_per_dim_of_an_image_flow_is_reproducible_and_checks_its_input():
    torch.manual_seed(0)
    flow = multiscale_flow((1, 4, 4), steps=(1, 1), hidden=(4, 4), blocks=(1, 1)).eval()
    images = torch.randint(0, 256, (10, 1, 4, 4), dtype=torch.uint8)
    bpd = flows.evaluate_bits_per_dim(flow, images, batch_size=4)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        by_hand = [
            dequantized_bits_per_dim(flow.log_prob(flows.dequantize(images[i : i + 4], generator=g)), 16)
            for i in range(0, 10, 4)
        ]
    assert bpd == pytest.approx(torch.cat(by_hand).mean().item(), rel=1e-6)
    assert bpd == flows.evaluate_bits_per_dim(flow, images, batch_size=4)
    with pytest.raises(ValueError, match="uint8"):
        flows.evaluate_bits_per_dim(flow, images.float() / 255)


def test_squeeze_moves_each_2x2_block_into_channels():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    y = flows.squeeze(x)
    assert y.shape == (1, 4, 2, 2)
    assert y[0, :, 0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]  # the top-left block
    torch.testing.assert_close(flows.unsqueeze(y), x)
    torch.testing.assert_close(Unsqueeze()(Squeeze()(x)[0])[0], x)
    with pytest.raises(ValueError, match="even"):
        flows.squeeze(torch.zeros(1, 1, 3, 4))


def test_actnorm_initialises_from_data_once_and_keeps_it_in_its_state():
    x = torch.randn(500, 3) * torch.tensor([2.0, 0.5, 1.0]) + torch.tensor([1.0, -3.0, 0.0])
    layer = ActNorm(3).train()
    y, _ = layer(x)
    torch.testing.assert_close(y.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(0), torch.ones(3), atol=1e-4, rtol=0)
    before = layer.bias.detach().clone()
    layer(x * 10)  # a second batch must not re-initialise
    torch.testing.assert_close(layer.bias.detach(), before)
    copy = ActNorm(3)
    copy.load_state_dict(layer.state_dict())
    assert bool(copy.initialized)


def test_log_prob_sample_and_temperature():
    torch.manual_seed(0)
    x = torch.randn(256, 2)
    flow = randomized(coupling_flow_2d(4, 16), x).float()
    assert flow.log_prob(x).shape == (256,)
    samples = flow.sample(1000)
    assert samples.shape == (1000, 2) and torch.isfinite(samples).all()
    cold = flow.sample(1000, temperature=0.3)
    # a lower temperature shrinks the latent, so samples concentrate around the flow's mode f^{-1}(0)
    centre = flow.inverse(torch.zeros(1, 2))
    assert (cold - centre).norm(dim=1).mean() < 0.6 * (samples - centre).norm(dim=1).mean()
    with pytest.raises(ValueError, match="shape"):
        flow.log_prob(torch.zeros(4, 3))


def test_flow_log_prob_adds_the_standard_normal_base():
    flow = Flow([ActNorm(2)], shape=(2,)).eval()
    with torch.no_grad():
        flow.layers[0].bias.copy_(torch.tensor([1.0, -2.0]))
        flow.layers[0].log_scale.copy_(torch.tensor([0.5, -0.25]))
    x = torch.randn(7, 2)
    expected = torch.distributions.Normal(torch.tensor([-1.0, 2.0]), torch.tensor([0.5, -0.25]).neg().exp())
    torch.testing.assert_close(flow.log_prob(x), expected.log_prob(x).sum(1))


def test_fit_gaussian_is_the_maximum_likelihood_gaussian():
    x = torch.randn(2000, 2, dtype=torch.float64) @ torch.tensor([[2.0, 0.0], [1.0, 0.5]], dtype=torch.float64)
    g = flows.fit_gaussian(x)
    ll = g.log_prob(x).mean()
    for shift in (torch.tensor([0.1, 0.0]), torch.tensor([0.0, -0.1])):
        other = torch.distributions.MultivariateNormal(g.mean + shift.double(), g.covariance_matrix)
        assert other.log_prob(x).mean() < ll
    assert torch.distributions.MultivariateNormal(g.mean, 1.1 * g.covariance_matrix).log_prob(x).mean() < ll


def test_factor_passes_the_factored_out_channels_straight_to_the_latent():
    torch.manual_seed(0)
    inner = Flow([ActNorm(2)], shape=(2, 3, 3))
    with torch.no_grad():
        inner.layers[0].log_scale.fill_(0.7)
    layer = flows.Factor(2, inner).eval()
    x = torch.randn(5, 4, 3, 3)
    z, log_det = layer(x)
    torch.testing.assert_close(z[:, 2:], x[:, 2:])
    torch.testing.assert_close(z[:, :2], x[:, :2] * math.exp(0.7))
    torch.testing.assert_close(log_det, torch.full((5,), 0.7 * 2 * 9))
    torch.testing.assert_close(layer.inverse(z), x)


def test_dequantized_bits_per_dim_agrees_with_the_metrics_conversion():
    from gencourse import metrics

    log_p = torch.tensor([1500.0, 2100.0, -30.0])
    nll_discrete = -log_p + 784 * math.log(256)
    assert dequantized_bits_per_dim(log_p, 784).mean().item() == pytest.approx(
        metrics.bits_per_dim(nll_discrete, 784), rel=1e-6
    )


def test_dequantized_bits_per_dim_accepts_everything_a_density_on_dequantized_data_can_give():
    d = 784
    # a density at its largest possible cell average (uniform on one pixel cell: P(k) = 1) is 0 bits/dim;
    # one draw of u may land above the average, up to 64 log 2 nats above D log 256 (probability 2^-64)
    at_bound = torch.tensor([d * math.log(256), d * math.log(256) + 60 * math.log(2)])
    bpd = dequantized_bits_per_dim(at_bound, d)
    torch.testing.assert_close(bpd, torch.tensor([0.0, -60 / d]))
    # the training loss keeps its gradient
    log_p = torch.tensor([3000.0], requires_grad=True)
    dequantized_bits_per_dim(log_p, d).sum().backward()
    torch.testing.assert_close(log_p.grad, torch.tensor([-1 / (d * math.log(2))]))


def test_dequantized_bits_per_dim_refuses_an_nll_passed_as_the_log_density():
    # a discrete NLL of 9 bits/dim (what gencourse.metrics.bits_per_dim takes), passed as a log-density
    nll = torch.full((4,), 9.0 * 784 * math.log(2))
    with pytest.raises(ValueError, match=r"negative log-likelihood passed as the log-density.*metrics\.bits_per_dim"):
        dequantized_bits_per_dim(nll, 784)


def test_dequantized_bits_per_dim_refuses_the_density_of_data_that_was_not_dequantized():
    """A density fitted to the discrete values k / 255 themselves (a Gaussian of width e^-12 on one 16-pixel
    image) instead of their cells: far above what any density spread over the cells reaches."""
    image = torch.randint(0, 256, (1, 16)) / 255
    flow = Flow([ActNorm(16)], shape=(16,)).eval()
    with torch.no_grad():
        flow.layers[0].bias.copy_(-image[0])
        flow.layers[0].log_scale.fill_(12.0)
        log_p = flow.log_prob(image)
    assert log_p.item() > 16 * math.log(256) + 64 * math.log(2)
    with pytest.raises(ValueError, match="not dequantized"):
        dequantized_bits_per_dim(log_p, 16)


def test_dequantized_bits_per_dim_refuses_a_wrong_number_of_dimensions():
    with pytest.raises(ValueError, match="num_dims smaller"):
        dequantized_bits_per_dim(torch.full((2,), 3000.0), 1)  # an MNIST image's log-density with D = 1
    with pytest.raises(ValueError, match="positive"):
        dequantized_bits_per_dim(torch.zeros(2), 0)
