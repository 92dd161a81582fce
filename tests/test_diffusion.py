import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from gencourse import diffusion as D
from gencourse import train
from gencourse.nn import TimeMLP


class Oracle(torch.nn.Module):
    """A denoiser that knows x0 and so returns the true noise eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t)."""

    def __init__(self, x0, schedule):
        super().__init__()
        self.x0, self.schedule = x0, schedule
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x_t, t, y=None):
        step = (t * self.schedule.T).round().long()
        abar = self.schedule.alphas_cumprod[step].reshape(-1, *[1] * (x_t.dim() - 1))
        return (x_t - abar.sqrt() * self.x0) / (1 - abar).sqrt()


@pytest.mark.parametrize("kind", D.SCHEDULES)
def test_alphas_cumprod_decreases_to_zero(kind):
    s = D.NoiseSchedule(1000, kind)
    abar = s.alphas_cumprod
    assert abar.shape == (1000,) and s.betas.shape == (1000,) and abar.dtype == torch.float32
    assert (abar[1:] < abar[:-1]).all()
    assert abar[0] > 0.999 and abar[-1] < 1e-3
    assert torch.allclose(abar, torch.cumprod(1 - s.betas.double(), 0).float(), rtol=1e-4)
    assert ((s.betas > 0) & (s.betas < 1)).all()


@pytest.mark.parametrize("T", [10, 100, 4000])
def test_linear_schedule_destroys_data_for_any_T(T):
    s = D.NoiseSchedule(T, "linear")
    assert ((s.betas > 0) & (s.betas < 1)).all()  # a variance; for small T the scaled betas are clipped
    assert 0 < s.alphas_cumprod[-1] < 1e-3


def test_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown schedule"):
        D.NoiseSchedule(100, "quadratic")
    with pytest.raises(ValueError, match="integer >= 2"):
        D.NoiseSchedule(1)


def test_q_sample_is_the_closed_form():
    s = D.NoiseSchedule(100, "cosine")
    x0, noise = torch.randn(5, 1, 4, 4), torch.randn(5, 1, 4, 4)
    t = torch.tensor([0, 10, 50, 98, 99])
    abar = s.alphas_cumprod[t].view(-1, 1, 1, 1)
    expected = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
    assert torch.allclose(D.q_sample(x0, t, noise, s), expected, atol=1e-6)
    assert torch.allclose(D.predict_x0(expected[:3], noise[:3], t[:3], s), x0[:3], atol=1e-5)


def test_q_sample_matches_the_markov_chain_mean_and_variance():
    """Running the chain x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) z has the closed form's moments."""
    torch.manual_seed(0)
    s = D.NoiseSchedule(50, "linear")
    x0 = torch.full((200_000,), 1.5)
    x = x0.clone()
    for t in range(30):
        x = (1 - s.betas[t]).sqrt() * x + s.betas[t].sqrt() * torch.randn_like(x)
    closed = D.q_sample(x0, torch.full((len(x0),), 29), None, s)
    abar = s.alphas_cumprod[29]
    for sample in (x, closed):
        assert sample.mean().item() == pytest.approx(1.5 * abar.sqrt().item(), abs=0.01)
        assert sample.var().item() == pytest.approx(1 - abar.item(), abs=0.01)


def test_q_sample_rejects_float_steps_and_bad_noise():
    s = D.NoiseSchedule(10)
    with pytest.raises(TypeError, match="integers"):
        D.q_sample(torch.zeros(2, 2), torch.tensor([0.5, 1.0]), None, s)
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        D.q_sample(torch.zeros(2, 2), torch.tensor([0, 10]), None, s)
    with pytest.raises(ValueError, match="shape"):
        D.q_sample(torch.zeros(2, 2), torch.tensor([0, 1]), torch.zeros(2, 3), s)


@pytest.mark.parametrize("steps,eta", [(None, 0.0), (20, 0.0), (7, 1.0)])
def test_a_denoiser_that_returns_the_true_noise_reconstructs_x0(steps, eta):
    s = D.NoiseSchedule(100, "linear")
    x0 = torch.randn(4, 1, 6, 6)
    out = D.sample(Oracle(x0, s), x0.shape, s, steps=steps, eta=eta, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out, x0, atol=1e-4)


@pytest.mark.parametrize("steps,eta", [(None, 0.0), (25, 0.0), (25, 0.5), (25, 1.0)])
def test_with_the_true_noise_every_intermediate_state_has_the_forward_marginal(steps, eta):
    """The check above only sees the last step, where the oracle's x0_hat is exact whatever came
    before. Here every visited x_t must be distributed as q(x_t | x0) = N(sqrt(abar_t) x0, 1 - abar_t):
    ancestral sampling and DDIM with any eta keep the forward marginals when the noise prediction is right."""
    s = D.NoiseSchedule(1000, "linear")
    x0 = torch.full((40_000, 1), 0.7)
    states = {}
    D.sample(
        Oracle(x0, s),
        x0.shape,
        s,
        steps=steps,
        eta=eta,
        generator=torch.Generator().manual_seed(0),
        trajectory=lambda t, x_t, x0_hat: states.update({t: x_t.clone()}),
    )
    # DDPM's sigma_t^2 = beta_t is wider than the posterior variance, which shows near the end (2% at t = 32)
    checked = [t for t in states if t >= (100 if steps is None else 10)]
    assert len(checked) >= 20
    for t in checked:
        abar = s.abar(t).item()
        assert states[t].mean().item() == pytest.approx(abar**0.5 * 0.7, abs=0.03), t
        assert states[t].std().item() == pytest.approx((1 - abar) ** 0.5, rel=0.02), t


def test_deterministic_ddim_with_the_true_noise_moves_along_one_noise_direction():
    """With eta = 0 and the true noise, the noise implied by x_T is kept all the way down:
    x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps at every visited step, exactly."""
    s = D.NoiseSchedule(1000, "cosine")
    x0, x_T = torch.randn(6, 1, 5, 5), torch.randn(6, 1, 5, 5)
    abar_T = s.abar(s.T - 1)
    eps = (x_T - abar_T.sqrt() * x0) / (1 - abar_T).sqrt()
    states = {}
    D.sample(Oracle(x0, s), x0.shape, s, steps=30, x_T=x_T, trajectory=lambda t, x_t, x0_hat: states.update({t: x_t}))
    assert len(states) == 30
    for t, x_t in states.items():
        abar = s.abar(t)
        assert torch.allclose(x_t, abar.sqrt() * x0 + (1 - abar).sqrt() * eps, atol=1e-4), t


def test_ddim_with_eta_zero_is_deterministic_and_eta_one_is_not():
    torch.manual_seed(0)
    s = D.NoiseSchedule(50)
    net = TimeMLP(2, hidden=16, depth=1)
    x_T = torch.randn(8, 2)
    a = D.sample(net, (8, 2), s, steps=10, eta=0.0, x_T=x_T, generator=torch.Generator().manual_seed(1))
    b = D.sample(net, (8, 2), s, steps=10, eta=0.0, x_T=x_T, generator=torch.Generator().manual_seed(2))
    c = D.sample(net, (8, 2), s, steps=10, eta=1.0, x_T=x_T, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-2


def test_ddim_with_every_step_and_eta_one_is_ddpm_with_the_posterior_variance():
    torch.manual_seed(0)
    s = D.NoiseSchedule(30, "cosine")
    net = TimeMLP(2, hidden=16, depth=1)
    x, x_ddim = torch.randn(6, 2), None
    x_ddim = x.clone()
    for t in range(s.T - 1, -1, -1):
        z = torch.randn(6, 2)
        x = D.ddpm_step(x, D.guided(net, x, t / s.T), t, s, noise=z, variance="posterior")
        x_ddim = D.ddim_step(x_ddim, D.guided(net, x_ddim, t / s.T), t, t - 1, s, eta=1.0, noise=z)
    assert torch.allclose(x, x_ddim, atol=1e-4)


def test_ddpm_step_clipped_form_equals_the_eps_form_when_nothing_is_clipped():
    s = D.NoiseSchedule(100)
    x_t, eps, z = torch.randn(3, 5), torch.randn(3, 5), torch.randn(3, 5)
    for t in (99, 40, 1, 0):
        a = D.ddpm_step(x_t, eps, t, s, noise=z)
        b = D.ddpm_step(x_t, eps, t, s, noise=z, clip=1e6)
        assert torch.allclose(a, b, atol=1e-4)


def test_ddim_timesteps_cover_the_chain():
    assert D.ddim_timesteps(1000, 50)[0] == 999 and D.ddim_timesteps(1000, 50)[-1] == 0
    assert len(D.ddim_timesteps(1000, 50)) == 50
    assert D.ddim_timesteps(10, 10) == list(range(9, -1, -1))
    with pytest.raises(ValueError, match="steps must be"):
        D.ddim_timesteps(10, 11)


def test_classifier_free_guidance_combines_the_two_predictions():
    class Net(torch.nn.Module):
        num_classes = 3

        def forward(self, x, t, y=None):  # "unconditional" (label 3 or None) predicts 3, class c predicts c
            y = torch.full((len(x),), 3) if y is None else y
            return x * 0 + y.float()[:, None]

    x, y = torch.zeros(4, 2), torch.tensor([0, 1, 2, 1])
    assert torch.allclose(D.guided(Net(), x, 0.5, y=y, guidance=1.0), y.float()[:, None].expand(4, 2))
    assert torch.allclose(D.guided(Net(), x, 0.5, y=y, guidance=0.0), torch.full((4, 2), 3.0))
    w = 2.5
    assert torch.allclose(D.guided(Net(), x, 0.5, y=y, guidance=w), 3 + w * (y.float()[:, None] - 3).expand(4, 2))


def test_autoguidance_extrapolates_away_from_the_weak_model():
    class Const(torch.nn.Module):
        num_classes = 3

        def __init__(self, uncond, per_class):
            super().__init__()
            self.uncond, self.per_class = uncond, per_class

        def forward(self, x, t, y=None):  # label 3 or None: the unconditional prediction
            if y is None:
                return x * 0 + self.uncond
            return x * 0 + torch.where(y == 3, self.uncond, self.per_class * y.float())[:, None]

    good, weak = Const(3.0, 1.0), Const(1.0, 0.5)
    x, y = torch.zeros(4, 2), torch.tensor([0, 1, 2, 1])
    assert torch.allclose(D.guided(good, x, 0.5, weak=weak, autoguidance=2.0), torch.full((4, 2), 1 + 2 * (3 - 1.0)))
    assert torch.allclose(D.guided(good, x, 0.5, weak=weak, autoguidance=1.0), torch.full((4, 2), 3.0))
    assert torch.allclose(D.guided(good, x, 0.5, autoguidance=2.0), torch.full((4, 2), 3.0))  # no weak model
    # with labels, each model is first guided by its labels, then the two are combined
    w, a = 2.0, 1.5
    strong = 3 + w * (y.float() - 3)
    weaker = 1 + w * (0.5 * y.float() - 1)
    expected = (weaker + a * (strong - weaker))[:, None].expand(4, 2)
    assert torch.allclose(D.guided(good, x, 0.5, y=y, guidance=w, weak=weak, autoguidance=a), expected)


def test_autoguidance_without_a_weak_model_is_refused_with_the_fix():
    model = D.Diffusion(TimeMLP(2, hidden=8, depth=1), D.NoiseSchedule(100), (2,))
    assert model.sample(3, autoguidance=1.0).shape == (3, 2)
    with pytest.raises(ValueError, match="needs a weak model.*has none.*weak="):
        model.sample(3, autoguidance=2.0)


def test_diffusion_options_are_keyword_only():
    net, schedule = TimeMLP(2, hidden=8, depth=1), D.NoiseSchedule(100)
    with pytest.raises(TypeError):
        D.Diffusion(net, schedule, (2,), 1.0)  # clip, p_uncond, min_snr, weak mean nothing by position
    assert D.Diffusion(net, schedule, (2,), clip=1.0, min_snr=5.0).min_snr == 5.0


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _train_recording_every_step(model, steps, decay, snapshots=None):
    """train_with_ema, and the model's weights after each of its optimizer steps (a global optimizer hook)."""
    after_step = []
    handle = register_optimizer_step_post_hook(lambda optimizer, args, kwargs: after_step.append(_weights(model)))
    try:
        data = [(torch.randn(16, 2),)] * steps
        train.train_with_ema(
            model, lambda m, b: m.loss(*b), data, steps=steps, lr=1e-2, decay=decay, snapshots=snapshots, desc="t"
        )
    finally:
        handle.remove()
    return after_step


def test_train_with_ema_averages_the_weights_after_every_optimizer_step():
    """n optimizer steps make n updates of the average, the first and the last counted once each:
    shadow_k = d_k shadow_{k-1} + (1 - d_k) w_k from the initial weights, d_k = min(decay, (1 + k) / (10 + k))."""
    torch.manual_seed(0)
    model = D.Diffusion(TimeMLP(2, hidden=8, depth=1), D.NoiseSchedule(100), (2,))
    shadow, expected = _weights(model), {}
    snapshots = {1: None, 2: None, 6: None}
    after_step = _train_recording_every_step(model, 6, 0.5, snapshots)
    assert len(after_step) == 6
    for k, weights in enumerate(after_step, 1):
        d = min(0.5, (1 + k) / (10 + k))
        shadow = {name: d * shadow[name] + (1 - d) * w for name, w in weights.items()}
        expected[k] = shadow
    final = model.state_dict()
    for name in final:
        assert torch.allclose(final[name], expected[6][name], atol=1e-6), name
        for k in (1, 2, 6):
            assert torch.allclose(snapshots[k][name], expected[k][name], atol=1e-6), (k, name)
    assert not torch.allclose(final["net.out.weight"], after_step[-1]["net.out.weight"])  # an average, not the last


def test_train_with_ema_keeps_the_averaged_weights_of_the_requested_steps():
    torch.manual_seed(0)
    model = D.Diffusion(TimeMLP(2, hidden=8, depth=1), D.NoiseSchedule(100), (2,))
    data = [(torch.randn(16, 2),)] * 6
    snapshots = {2: None, 6: None}
    initial = _weights(model)
    train.train_with_ema(model, lambda m, b: m.loss(*b), data, steps=6, lr=1e-2, decay=0.5, snapshots=snapshots)
    final = model.state_dict()
    assert all(torch.equal(snapshots[6][k], final[k]) for k in final)  # the last snapshot is what the model holds
    assert not all(torch.equal(snapshots[2][k], final[k]) for k in final)  # taken during training:
    assert not all(torch.equal(snapshots[2][k], initial[k]) for k in final)  # neither the end nor the start
    assert D.net_weights(snapshots[2]).keys() == model.net.state_dict().keys()
    for bad in (0, 7, 2.5):
        with pytest.raises(ValueError, match="snapshot steps"):
            train.train_with_ema(
                model, lambda m, b: m.loss(*b), data, steps=6, lr=1e-2, decay=0.5, snapshots={bad: None}
            )


def test_train_with_ema_follows_the_one_cycle_learning_rate():
    """Adam's learning rate over the steps is gencourse.train.lr_schedule's one-cycle shape: from lr / 10,
    up to lr after the warm-up, down to lr / 1000 at the end."""
    torch.manual_seed(0)
    model = D.Diffusion(TimeMLP(2, hidden=8, depth=1), D.NoiseSchedule(100), (2,))
    rates = []
    handle = register_optimizer_step_pre_hook(
        lambda optimizer, args, kwargs: rates.append(optimizer.param_groups[0]["lr"])
    )
    try:
        data = [(torch.randn(16, 2),)] * 40
        train.train_with_ema(model, lambda m, b: m.loss(*b), data, steps=40, lr=1e-2, decay=0.9, warmup=0.25)
    finally:
        handle.remove()
    assert len(rates) == 40
    assert rates[0] == pytest.approx(1e-3) and max(rates) == pytest.approx(1e-2, rel=1e-3)
    assert rates.index(max(rates)) == 9  # the peak ends the warm-up, a quarter of the 40 steps
    assert rates[-1] == pytest.approx(1e-5, rel=1e-3)


def test_drop_labels_uses_the_null_token_at_the_given_rate():
    torch.manual_seed(0)
    y = torch.zeros(100_000, dtype=torch.long)
    dropped = D.drop_labels(y, 0.2, 10)
    assert set(dropped.unique().tolist()) == {0, 10}
    assert (dropped == 10).float().mean().item() == pytest.approx(0.2, abs=0.01)


def test_trained_model_samples_match_a_gaussian_mean_and_covariance():
    torch.manual_seed(0)
    mean = torch.tensor([1.0, -2.0])
    chol = torch.linalg.cholesky(torch.tensor([[1.0, 0.6], [0.6, 0.5]]))
    data = lambda n: mean + torch.randn(n, 2) @ chol.T
    model = D.Diffusion(TimeMLP(2, hidden=64, depth=2), D.NoiseSchedule(100, "linear"), (2,))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(800):
        loss = model.loss(data(256))
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = model.sample(2000, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(x.mean(0), mean, atol=0.1)
    assert torch.allclose(torch.cov(x.T), chol @ chol.T, atol=0.15)


def test_score_of_a_noise_predictor_for_standard_normal_data_is_minus_x():
    """For x0 ~ N(0, I) every x_t is N(0, I), so E[eps | x_t] = sqrt(1 - abar_t) x_t and the score is -x."""
    s = D.NoiseSchedule(100)

    class Net(torch.nn.Module):
        def forward(self, x, t, y=None):
            abar = s.alphas_cumprod[(t * s.T).round().long()][:, None]
            return (1 - abar).sqrt() * x

    x = torch.randn(10, 2)
    for t in (0, 50, 99):
        assert torch.allclose(D.score(Net(), x, t, s), -x, atol=1e-5)


def test_langevin_dynamics_samples_a_gaussian_from_a_far_start():
    torch.manual_seed(0)
    mu, sigma = torch.tensor([2.0, -1.0]), 0.5
    x = D.langevin_dynamics(lambda x: -(x - mu) / sigma**2, torch.full((20_000, 2), 8.0), step_size=0.01, steps=500)
    assert torch.allclose(x.mean(0), mu, atol=0.02)
    assert x.std(0).mean().item() == pytest.approx(sigma, rel=0.03)


def test_flow_matching_euler_with_the_exact_velocity_lands_on_the_data_point():
    c = torch.tensor([[0.5, -1.5]])

    class Velocity(torch.nn.Module):
        def forward(self, x, t, y=None):  # the optimal field for a single data point c
            return (c - x) / (1 - t[:, None])

    x = D.flow_sample(Velocity(), (7, 2), steps=10, method="euler", device=torch.device("cpu"))
    assert torch.allclose(x, c.expand(7, 2), atol=1e-5)


def test_flow_matching_heun_with_the_exact_gaussian_velocity_transports_the_noise():
    """For data N(m, s^2): v(x, t) = m + (t s^2 - (1 - t)) / ((1 - t)^2 + t^2 s^2) (x - t m), exactly."""
    m, s = 2.0, 0.5

    class Velocity(torch.nn.Module):
        def forward(self, x, t, y=None):
            t = t[:, None]
            return m + (t * s**2 - (1 - t)) / ((1 - t) ** 2 + t**2 * s**2) * (x - t * m)

    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(50_000, 1, generator=g)
    x1 = D.flow_sample(Velocity(), (50_000, 1), steps=50, method="heun", x0=x0)
    assert torch.allclose(x1, m + s * x0, atol=1e-3)  # the flow is the monotone map x0 -> m + s x0
    x1_euler = D.flow_sample(Velocity(), (50_000, 1), steps=50, method="euler", x0=x0)
    assert (x1_euler - (m + s * x0)).abs().max() > 0.03  # first order: 100 times the error of Heun


def test_flow_matching_loss_is_minimised_by_the_exact_velocity():
    torch.manual_seed(0)
    m, s = 2.0, 0.5

    class Velocity(torch.nn.Module):
        def __init__(self, shift):
            super().__init__()
            self.shift = shift

        def forward(self, x, t, y=None):
            t = t[:, None]
            return m + (t * s**2 - (1 - t)) / ((1 - t) ** 2 + t**2 * s**2) * (x - t * m) + self.shift

    x1 = m + s * torch.randn(200_000, 1)
    best = D.flow_matching_loss(Velocity(0.0), x1)
    assert D.flow_matching_loss(Velocity(0.1), x1) > best
    assert D.flow_matching_loss(Velocity(-0.1), x1) > best
    expected = m**2 * 0 + 1 + s**2  # E||x1 - x0||^2 minus the explained part is below Var(x1 - x0)
    assert best < expected


class GaussianDenoiser(torch.nn.Module):
    """The exact noise predictor for data x0 ~ N(m, sd^2) (each coordinate): x_t ~ N(sqrt(abar) m,
    abar sd^2 + 1 - abar), so E[eps | x_t] = sqrt(1 - abar) (x_t - sqrt(abar) m) / (abar sd^2 + 1 - abar)."""

    def __init__(self, m, sd, schedule):
        super().__init__()
        self.m, self.sd, self.schedule = m, sd, schedule

    def forward(self, x_t, t, y=None):
        step = (torch.as_tensor(t, dtype=torch.float32) * self.schedule.T).round().long()
        abar = self.schedule.alphas_cumprod[step].reshape(-1, *[1] * (x_t.dim() - 1))
        return (1 - abar).sqrt() * (x_t - abar.sqrt() * self.m) / (abar * self.sd**2 + 1 - abar)


def test_ddim_inversion_of_gaussian_data_standardizes_it_and_round_trips():
    """For Gaussian data the deterministic DDIM map is the standardization x0 -> (x0 - m) / sd, so the
    inverted latent is known; inversion is first-order accurate, so doubling the steps halves the error."""
    s = D.NoiseSchedule(1000, "cosine")
    m, sd = 0.5, 0.3
    x0 = m + sd * torch.randn(5, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    net = GaussianDenoiser(m, sd, s)
    errors = {}
    for steps in (100, 200):
        latent = D.ddim_invert(net, x0, s, steps=steps)
        assert latent.shape == x0.shape
        back = D.sample(net, x0.shape, s, steps=steps, x_T=latent)
        errors[steps] = ((latent - (x0 - m) / sd).abs().max().item(), (back - x0).abs().max().item())
    assert errors[100][0] < 0.1 and errors[100][1] < 0.06
    assert errors[200][0] < 0.6 * errors[100][0] and errors[200][1] < 0.6 * errors[100][1]


def test_min_snr_weighting_down_weights_only_the_nearly_noise_free_steps():
    s = D.NoiseSchedule(100)
    x0 = torch.randn(4096, 2)

    class Zero(torch.nn.Module):
        def forward(self, x, t, y=None):
            return torch.zeros_like(x)

    torch.manual_seed(0)
    plain = D.ddpm_loss(Zero(), x0, s)
    torch.manual_seed(0)
    weighted = D.ddpm_loss(Zero(), x0, s, min_snr=5.0)
    torch.manual_seed(0)
    t = torch.randint(0, s.T, (len(x0),))
    snr = s.snr()[t]
    assert plain.item() == pytest.approx(1.0, abs=0.03)  # predicting 0 costs E||eps||^2 = 1 per dimension
    assert weighted.item() == pytest.approx((snr.clamp(max=5.0) / snr).mean().item(), rel=0.05)
    torch.manual_seed(0)
    assert D.ddpm_loss(Zero(), x0, s, min_snr=1e9).item() == pytest.approx(plain.item(), rel=1e-6)
