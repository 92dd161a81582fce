import math

import pytest
import torch
from torch import nn

from gencourse import gan
from gencourse.data import toy2d, toy2d_modes
from gencourse.metrics import mode_metrics
from gencourse.train import NonFiniteLossError

SP0, SP1, SP2 = math.log(2), math.log1p(math.e), math.log1p(math.exp(-2))  # softplus(0), softplus(1), softplus(-2)
REAL, FAKE = torch.tensor([0.0, 2.0]), torch.tensor([0.0, -1.0])


# ---- losses ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "d_loss", "g_loss"),
    [
        # -mean log sigmoid(real) - mean log(1 - sigmoid(fake)); G: mean log(1 - sigmoid(fake))
        ("minimax", (SP0 + SP2) / 2 + (SP0 + math.log1p(math.exp(-1))) / 2, -(SP0 + math.log1p(math.exp(-1))) / 2),
        # same D loss; G: -mean log sigmoid(fake)
        ("nonsaturating", (SP0 + SP2) / 2 + (SP0 + math.log1p(math.exp(-1))) / 2, (SP0 + SP1) / 2),
        ("wgan", -0.5 - 1.0, 0.5),  # mean fake - mean real; G: -mean fake
        ("hinge", (1 + 0) / 2 + (1 + 0) / 2, 0.5),  # mean relu(1 - real) + mean relu(1 + fake)
    ],
)
def test_losses_match_hand_computed_values(kind, d_loss, g_loss):
    assert gan.discriminator_loss(REAL, FAKE, kind).item() == pytest.approx(d_loss, abs=1e-6)
    assert gan.generator_loss(FAKE, kind).item() == pytest.approx(g_loss, abs=1e-6)


def test_bce_losses_are_finite_for_huge_logits_and_unknown_kinds_are_rejected():
    huge = torch.tensor([200.0, -200.0])
    assert gan.discriminator_loss(huge, huge, "minimax").item() == pytest.approx(200.0)
    assert gan.generator_loss(huge, "nonsaturating").item() == pytest.approx(100.0)
    with pytest.raises(ValueError, match="unknown GAN loss kind 'lsgan'"):
        gan.generator_loss(huge, "lsgan")


def test_minimax_generator_gradient_vanishes_when_the_discriminator_wins_but_nonsaturating_does_not():
    logits = torch.tensor([-8.0], requires_grad=True)  # D(G(z)) = 3e-4: the fake is confidently rejected
    (g_minimax,) = torch.autograd.grad(gan.generator_loss(logits, "minimax"), logits)
    (g_nonsat,) = torch.autograd.grad(gan.generator_loss(logits, "nonsaturating"), logits)
    assert abs(g_minimax.item()) < 1e-3 and g_nonsat.item() == pytest.approx(-1.0, abs=1e-3)


def test_optimal_discriminator_on_two_gaussians_and_the_jensen_shannon_value():
    x = torch.linspace(-12, 13, 200001, dtype=torch.float64)
    dx = x[1] - x[0]
    p_data = torch.exp(-(x**2) / 2) / math.sqrt(2 * math.pi)
    p_g = torch.exp(-((x - 1) ** 2) / 2) / math.sqrt(2 * math.pi)
    d_star = gan.optimal_discriminator(p_data, p_g)
    # log p_data - log p_g = 1/2 - x, so D* = sigmoid(1/2 - x): 1/2 where the densities cross
    assert torch.allclose(d_star, torch.sigmoid(0.5 - x), atol=1e-12)

    def value(d):
        return ((p_data * d.log() + p_g * (1 - d).log()) * dx).sum().item()

    m = (p_data + p_g) / 2
    jsd = 0.5 * ((p_data * (p_data / m).log() + p_g * (p_g / m).log()) * dx).sum().item()
    assert value(d_star) == pytest.approx(-math.log(4) + 2 * jsd, abs=1e-6)
    assert 0 < jsd < math.log(2)
    assert value(torch.sigmoid(0.6 - 1.1 * x)) < value(d_star)  # any other D does worse


# ---- gradient penalty --------------------------------------------------------------------------


@pytest.mark.parametrize("norm", [0.5, 1.0, 2.0, 3.0])
def test_gradient_penalty_of_a_linear_critic_is_squared_norm_minus_one(norm):
    critic = nn.Linear(4, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.randn(1, 4))
        critic.weight.mul_(norm / critic.weight.norm())
    penalty = gan.gradient_penalty(critic, torch.randn(16, 4), torch.randn(16, 4))
    assert penalty.item() == pytest.approx((norm - 1) ** 2, abs=1e-5)
    (grad,) = torch.autograd.grad(penalty, critic.weight)  # differentiable, so it can train the critic
    assert torch.allclose(grad, 2 * (norm - 1) * critic.weight / norm, atol=1e-5)


def test_gradient_penalty_is_taken_on_random_points_between_real_and_fake():
    # f(x) = |x|^2 / 2 has gradient x; real = 0 and |fake| = 4 give E(4 u - 1)^2 = 7/3 for u ~ U[0, 1]
    critic = lambda x: 0.5 * x.flatten(1).square().sum(1)
    fake = torch.randn(20000, 1, 2, 2)
    fake = 4 * fake / fake.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    assert gan.gradient_penalty(critic, torch.zeros_like(fake), fake).item() == pytest.approx(7 / 3, abs=0.1)
    with pytest.raises(ValueError, match="same shape"):
        gan.gradient_penalty(critic, torch.zeros(3, 2), torch.zeros(4, 2))


def test_slerp_keeps_the_norm_and_hits_the_endpoints():
    z0, z1 = torch.randn(8), torch.randn(8)
    z1 = z1 * z0.norm() / z1.norm()
    path = gan.slerp(z0, z1, torch.linspace(0, 1, 9))
    assert path.shape == (9, 8)
    assert torch.allclose(path[0], z0, atol=1e-5) and torch.allclose(path[-1], z1, atol=1e-5)
    assert torch.allclose(path.norm(dim=1), z0.norm().expand(9), rtol=1e-4)


# ---- architectures -----------------------------------------------------------------------------


def test_mlp_networks_shapes_packing_and_conditioning():
    g, d = gan.MLPGenerator(latent_dim=3, hidden=(16, 16)), gan.MLPDiscriminator(hidden=(16, 16))
    assert g(torch.randn(10, 3)).shape == (10, 2) and d(torch.randn(10, 2)).shape == (10,)
    packed = gan.MLPDiscriminator(hidden=(16,), pack=4)
    assert packed(torch.randn(12, 2)).shape == (3,)
    with pytest.raises(ValueError, match="multiple of 4"):
        packed(torch.randn(10, 2))
    cg = gan.MLPGenerator(latent_dim=3, hidden=(16,), num_classes=5)
    cd = gan.MLPDiscriminator(hidden=(16,), num_classes=5)
    y = torch.arange(6) % 5
    assert cg(torch.randn(6, 3), y).shape == (6, 2) and cd(torch.randn(6, 2), y).shape == (6,)
    with pytest.raises(ValueError, match="class-conditional"):
        cg(torch.randn(6, 3))
    with pytest.raises(ValueError, match="unconditional"):
        d(torch.randn(6, 2), y)


def test_dcgan_networks_shapes_range_and_spectral_norm():
    g = gan.DCGenerator(latent_dim=8, ch=4, num_classes=10)
    x = g(torch.randn(5, 8), torch.arange(5))
    assert x.shape == (5, 1, 28, 28) and x.abs().max() <= 1
    assert gan.DCDiscriminator(ch=4)(x).shape == (5,)
    sn = gan.DCDiscriminator(ch=4, norm="none", num_classes=10, spectral_norm=True)
    for _ in range(30):  # power iteration converges over forward passes in train mode
        out = sn(x, torch.arange(5))
    assert out.shape == (5,)
    for module in sn.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            sigma = torch.linalg.matrix_norm(module.weight.detach().flatten(1), ord=2)
            assert sigma.item() == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ValueError, match="same classes"):
        gan.GAN(gan.DCGenerator(8, 4, num_classes=10), gan.DCDiscriminator(4))


def test_gan_sample_is_deterministic_in_eval_and_labels_default_to_every_class():
    model = gan.GAN(gan.DCGenerator(8, 4, num_classes=10), gan.DCDiscriminator(4, num_classes=10))
    z = torch.randn(20, 8)
    a = model.sample(z=z)
    assert a.shape == (20, 1, 28, 28) and torch.equal(a, model.sample(z=z))
    assert torch.equal(a, model.sample(z=z, labels=torch.arange(20) % 10))
    assert not torch.equal(a, model.sample(z=z, labels=torch.zeros(20, dtype=torch.long)))
    assert model.generator.training  # sample() leaves the training mode as it was


# ---- the training loop -------------------------------------------------------------------------


def _toy_gan(pack=1):
    return gan.GAN(gan.MLPGenerator(2, hidden=(64, 64)), gan.MLPDiscriminator(hidden=(64, 64), pack=pack))


def test_short_training_on_ring8_covers_more_modes_than_at_initialization():
    """Measured with the protocol itself (a mode is covered by samples within 3 std of its centre):
    1000 steps (about 5 s) reached 8/8 modes for seeds 0-3, from 0/8 at initialization."""
    torch.manual_seed(0)
    model, modes = _toy_gan(), toy2d_modes("ring8")
    before = mode_metrics(model.sample(2500), modes)
    snapshots = gan.Snapshots(torch.randn(256, 2), points=torch.randn(100, 2))
    history = gan.train_gan(
        model,
        lambda: toy2d("ring8", 64),
        steps=1000,
        lr=2e-3,
        lr_schedule=lambda step: 1 - step / 1000,
        callback=snapshots,
        every=400,
    )
    after = mode_metrics(model.sample(2500), modes)
    assert before["modes"] <= 1 and after["modes"] >= 7
    assert after["high_quality"] > before["high_quality"] + 0.03
    assert len(history["d_loss"]) == len(history["g_loss"]) == 1000 == history.meta["steps"]
    assert [f["step"] for f in snapshots.frames] == [400, 800, 999]
    assert snapshots.frames[0]["samples"].shape == (256, 2) and snapshots.frames[0]["logits"].shape == (100,)
    assert not model.training


def test_wgan_gp_with_critic_steps_logs_the_penalty_and_fewer_generator_losses():
    history = gan.train_gan(_toy_gan(), lambda: toy2d("grid25", 64), kind="wgan", steps=10, n_critic=5, gp_weight=1)
    assert len(history["d_loss"]) == len(history["gp"]) == 10 and len(history["g_loss"]) == 2
    assert history.steps("g_loss") == [0, 5]


def test_wgan_gp_moves_the_samples_onto_the_data_and_drives_the_critic_to_unit_gradients():
    torch.manual_seed(0)
    model, target = _toy_gan(), torch.tensor([2.0, 2.0])
    start = (model.sample(2000).mean(0) - target).norm().item()
    history = gan.train_gan(
        model,
        lambda: target + 0.3 * torch.randn(64, 2),
        kind="wgan",
        steps=300,
        n_critic=5,
        gp_weight=10,
        lr=1e-3,
        betas=(0.0, 0.9),
    )
    end = (model.sample(2000).mean(0) - target).norm().item()
    assert start > 2.5 and end < 0.5 * start  # measured: 2.97 -> 0.58
    gp = history["gp"]
    assert sum(gp[-50:]) / 50 < 0.1 * sum(gp[:20]) / 20  # measured: 0.29 -> 0.0034


def test_conditional_training_on_labelled_batches():
    model = gan.GAN(gan.MLPGenerator(2, hidden=(16,), num_classes=3), gan.MLPDiscriminator(hidden=(16,), num_classes=3))
    batches = [(torch.randn(8, 2), torch.randint(0, 3, (8,))) for _ in range(4)]
    history = gan.train_gan(model, batches, epochs=2, kind="hinge")
    assert len(history["d_loss"]) == 8
    with pytest.raises(ValueError, match="needs \\(x, labels\\) batches"):
        gan.train_gan(model, [torch.randn(8, 2)], epochs=1)


def test_infogan_generator_takes_the_code_and_bad_setups_are_rejected():
    model = gan.GAN(gan.DCGenerator(8, 4, num_classes=3), gan.DCDiscriminator(4, num_codes=3), codes=3)
    assert model.num_classes is None and model.codes == 3  # no labels: an unconditional model of p(x)
    assert model.sample_code(3000).bincount(minlength=3).min() > 900  # uniform codes
    z = torch.randn(4, 8)
    x = model.sample(z=z, code=torch.tensor([1, 1, 1, 1]))
    assert x.shape == (4, 1, 28, 28)
    assert torch.equal(x, model.generator.eval()(z, torch.tensor([1, 1, 1, 1])))
    assert not torch.equal(x, model.sample(z=z, code=torch.tensor([0, 0, 0, 0])))
    assert model.discriminator.code_logits(x).shape == (4, 3)
    with pytest.raises(ValueError, match="integers in"):
        model.sample(2, code=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="takes no labels"):
        model.sample(2, labels=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="num_codes=3"):
        gan.GAN(gan.DCGenerator(8, 4, num_classes=3), gan.DCDiscriminator(4), codes=3)
    with pytest.raises(ValueError, match="num_classes=3"):
        gan.GAN(gan.DCGenerator(8, 4), gan.DCDiscriminator(4, num_codes=3), codes=3)
    with pytest.raises(ValueError, match="no categorical code"):
        gan.GAN(gan.DCGenerator(8, 4), gan.DCDiscriminator(4)).sample(2, code=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="no code head"):
        gan.DCDiscriminator(4).code_logits(x)
    with pytest.raises(ValueError, match="info_weight is for an InfoGAN"):
        gan.train_gan(
            gan.GAN(gan.DCGenerator(8, 4), gan.DCDiscriminator(4)), [torch.zeros(2, 1, 28, 28)], info_weight=2
        )
    counts = gan.code_digits(model, n_per_code=30)
    assert counts.shape == (3, 10) and counts.dtype == torch.int64 and (counts.sum(1) <= 30).all()
    purity, digit = gan.code_purity(torch.tensor([[0, 8, 2] + [0] * 7, [0] * 10, [0] * 9 + [5]]))
    assert torch.allclose(purity, torch.tensor([0.8, 0.0, 1.0])) and digit.tolist()[0::2] == [1, 9]
    with pytest.raises(ValueError, match="needs an InfoGAN"):
        gan.code_digits(gan.GAN(gan.DCGenerator(8, 4), gan.DCDiscriminator(4)))


def test_infogan_training_makes_the_code_recoverable_from_the_sample():
    """The information term rewards G for samples whose code Q can tell: on ring8 with a 4-way code,
    300 steps take Q's accuracy on fresh samples from chance (25%) to well above it (measured: 100%)."""

    class Disc(gan.MLPDiscriminator):
        def __init__(self):
            super().__init__(hidden=(64, 64))
            self.num_codes, self.code_head = 4, nn.Linear(64, 4)

        def code_logits(self, x):
            return self.code_head(self.features(x))

    torch.manual_seed(0)
    model = gan.GAN(gan.MLPGenerator(2, hidden=(64, 64), num_classes=4), Disc(), codes=4)

    def accuracy():
        code = torch.arange(2000) % 4
        with torch.no_grad():
            guess = model.discriminator.code_logits(model.sample(2000, code=code)).argmax(1)
        return (guess == code).float().mean().item()

    before = accuracy()
    history = gan.train_gan(model, lambda: toy2d("ring8", 64), steps=300, lr=2e-3)
    assert len(history["info"]) == 300 and history["info"][-1] < history["info"][0]
    assert before < 0.4 and accuracy() > 0.9


def test_a_nan_loss_stops_training_with_a_message():
    class Broken(nn.Module):
        num_classes = None

        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))

        def forward(self, x, labels=None):
            return x.sum(1) * self.w * float("nan")

    model = gan.GAN(gan.MLPGenerator(2, hidden=(8,)), Broken())
    with pytest.raises(NonFiniteLossError, match="discriminator loss became nan at step 0"):
        gan.train_gan(model, lambda: toy2d("ring8", 8), steps=3)


def _trained_weights(lr_schedule, steps):
    torch.manual_seed(0)
    model = _toy_gan()
    history = gan.train_gan(
        model, lambda: toy2d("ring8", 32), steps=steps, lr=1e-2, lr_schedule=lr_schedule, callback=lambda *a: None
    )
    return torch.cat([p.detach().flatten() for p in model.parameters()]), history


def test_a_named_lr_schedule_is_exactly_the_same_factor_as_the_callable():
    steps = 6
    by_name, history = _trained_weights("linear", steps)
    by_factor, _ = _trained_weights(lambda step: 1 - step / steps, steps)
    constant, _ = _trained_weights(None, steps)
    assert torch.equal(by_name, by_factor)  # "linear" is 1 - step / steps, bit for bit
    assert not torch.equal(by_name, constant)
    assert history.meta["eval_seconds"] > 0  # the callback's time is counted apart from training
    with pytest.raises(ValueError, match="give steps="):
        gan.train_gan(_toy_gan(), [torch.randn(8, 2)], epochs=1, lr_schedule="linear")
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'linear to 0'"):
        gan.train_gan(_toy_gan(), lambda: toy2d("ring8", 8), steps=2, lr_schedule="linear to 0")


def test_network_options_are_keyword_only():
    with pytest.raises(TypeError):
        gan.MLPGenerator(2, 2, (16,), "relu")
    with pytest.raises(TypeError):
        gan.MLPDiscriminator(2, (16,), "relu")
    with pytest.raises(TypeError):
        gan.DCGenerator(8, 4, 10)
    with pytest.raises(TypeError):
        gan.DCDiscriminator(4, "none")
    assert gan.DCDiscriminator(4, norm="none", num_codes=3).code_head.out_features == 3


# ---- mode metrics ------------------------------------------------------------------------------


def test_mode_metrics_on_real_data_one_mode_and_noise():
    modes = toy2d_modes("grid25")
    real = mode_metrics(toy2d("grid25", 10000, seed=0), modes)
    assert real["modes"] == 25 and real["num_modes"] == 25
    assert real["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.005) and real["kl_uniform"] < 0.01
    collapsed = mode_metrics(modes.centres[3] + 0.01 * torch.randn(2500, 2), modes)
    assert collapsed["modes"] == 1 and collapsed["high_quality"] == 1.0 and collapsed["counts"][3] == 2500
    assert collapsed["kl_uniform"] == pytest.approx(math.log(25), abs=1e-4)
    assert mode_metrics(torch.full((100, 2), 1.0), modes)["modes"] == 0  # between modes: nothing counts
    two = torch.cat([modes.centres[:1].expand(10, 2), modes.centres[1:2].expand(1, 2)])
    assert mode_metrics(two, modes)["modes"] == 2 and mode_metrics(two, modes, min_count=5)["modes"] == 1
