"""The course's diffusion models (gencourse.recipes.diffusion): their settings per profile, their names, and
that each recipe builds and trains what its settings say."""

import pytest
import torch
from recipe_checks import assert_frozen_and_documented
from torch.optim.optimizer import register_optimizer_step_post_hook

from gencourse import recipes
from gencourse.data import mnist
from gencourse.diffusion import Diffusion, LatentDiffusion
from gencourse.recipes import diffusion as R
from gencourse.train import cache_path, config_hash

# The values of every profile, as the notebooks and benchmarks have always trained them.
DDPM = {
    "smoke": dict(T=100, schedule="cosine", patch=2, ch=8, ch_mult=(1, 2), blocks=1, steps=30, batch_size=32, lr=8e-3),
    "lecture": dict(
        T=1000, schedule="cosine", patch=2, ch=32, ch_mult=(1, 2), blocks=1, steps=3000, batch_size=64, lr=8e-3
    ),
    "full": dict(
        T=1000, schedule="cosine", patch=2, ch=48, ch_mult=(1, 2), blocks=1, steps=10_000, batch_size=64, lr=8e-3
    ),
}
LATENT = {
    "smoke": dict(T=1000, schedule="linear", hidden=64, depth=2, steps=30, batch_size=64, lr=2e-3, ema=0.9),
    "lecture": dict(T=1000, schedule="linear", hidden=512, depth=4, steps=4000, batch_size=256, lr=2e-3, ema=0.999),
    "full": dict(T=1000, schedule="linear", hidden=1024, depth=6, steps=15_000, batch_size=256, lr=1e-3, ema=0.9999),
}
EMA = {"smoke": 0.9, "lecture": 0.999, "full": 0.9999}
N_TRAIN = {"smoke": 2048, "lecture": None, "full": None}


@pytest.mark.parametrize("profile", ["smoke", "lecture", "full"])
def test_settings_build_in_every_profile_are_frozen_and_show_every_field(monkeypatch, profile):
    monkeypatch.setenv("GENCOURSE_PROFILE", profile)
    ddpm = R.mnist_ddpm_settings()
    latent = R.latent_diffusion_settings(torch.nn.Linear(2, 2))
    for settings in (ddpm, latent):
        assert_frozen_and_documented(settings)
        assert (settings.lr_schedule, settings.warmup) == ("one_cycle", 0.05)
        assert (settings.ema, settings.n_train) == (EMA[profile], N_TRAIN[profile])
    assert {k: getattr(ddpm, k) for k in DDPM[profile]} == DDPM[profile]
    assert ddpm.min_snr == 5.0
    # one model for unconditional sampling, classifier-free guidance (labels dropped) and autoguidance (weak_at)
    assert (ddpm.num_classes, ddpm.p_uncond, ddpm.weak_at) == (10, 0.2, 0.1)
    assert {k: getattr(latent, k) for k in LATENT[profile]} == LATENT[profile]


def test_ddpm_settings_take_overrides_and_refuse_unknown_settings_and_bad_weak_fractions():
    assert R.ddpm_settings(steps=10, weak_at=0.5).weak_step == 5
    assert R.ddpm_settings(steps=10, weak_at=0.01).weak_step == 1  # at least one step in
    assert R.ddpm_settings().weak_step is None
    with pytest.raises(TypeError, match="learning_rate"):
        R.ddpm_settings(learning_rate=1e-3)
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match=rf"weak_at is the fraction.*\(0, 1\]; got {bad}"):
            R.ddpm_settings(weak_at=bad)


def test_settings_are_keyword_only():
    with pytest.raises(TypeError):
        R.DDPMSettings(100, "cosine")


# The cache keys of the DDPMs trained before train_with_ema averaged the weights after every optimizer step
# (it skipped the first step and counted the last twice): such cached models must never be loaded again.
KEYS_BEFORE_THE_EMA_FIX = {
    "smoke": {"ddpm_mnist": "9dec537bd632", "ddpm_mnist_cfg": "446cb8ee9689"},
    "lecture": {"ddpm_mnist": "732f36e9ecd4", "ddpm_mnist_cfg": "137b443ee407"},
    "full": {"ddpm_mnist": "c9d7d3fc2132", "ddpm_mnist_cfg": "655fd4ca8e95"},
}


@pytest.mark.parametrize("profile", ["smoke", "lecture", "full"])
def test_models_cached_before_the_ema_fix_are_not_loaded(monkeypatch, profile):
    monkeypatch.setenv("GENCOURSE_PROFILE", profile)
    key = config_hash("ddpm_mnist", R.mnist_ddpm_settings())
    assert key not in KEYS_BEFORE_THE_EMA_FIX[profile].values()


def test_the_latent_settings_change_with_the_vae():
    vae = torch.nn.Linear(2, 2)
    before = R.latent_diffusion_settings(vae)
    assert before == R.latent_diffusion_settings(vae)  # a fingerprint of the weights, not of the object
    with torch.no_grad():
        vae.weight[0, 0] += 1e-3
    after = R.latent_diffusion_settings(vae)
    assert after.vae != before.vae
    assert cache_path("latent_diffusion_mnist", after) != cache_path("latent_diffusion_mnist", before)


def test_the_registered_names_and_calls():
    assert recipes.COURSE_MODELS["ddpm_mnist"] is R.mnist_ddpm
    assert recipes.COURSE_MODELS["latent_diffusion_mnist"] is R.mnist_latent_diffusion
    calls = recipes.course_model_calls(
        {name: recipes.COURSE_MODELS[name] for name in ("ddpm_mnist", "latent_diffusion_mnist")}
    )
    assert list(calls) == ["ddpm_mnist", "latent_diffusion_mnist"]
    assert not any(name.startswith("ddpm") and name != "ddpm_mnist" for name in recipes.COURSE_MODELS)


def test_the_models_are_built_as_their_settings_say():
    ddpm = R.mnist_diffusion_model(R.mnist_ddpm_settings())
    assert isinstance(ddpm, Diffusion) and ddpm.shape == (1, 28, 28) and ddpm.clip == 1.0
    assert (ddpm.schedule.T, ddpm.schedule.kind, ddpm.min_snr) == (100, "cosine", 5.0)
    assert ddpm.net.patch == 2 and ddpm.num_classes == 10 and ddpm.p_uncond == 0.2
    assert ddpm.weak is not None and type(ddpm.weak) is type(ddpm.net) and ddpm.weak.num_classes == 10
    assert ddpm.net.stem[1].weight.is_contiguous(memory_format=torch.channels_last)
    plain = R.mnist_diffusion_model(R.ddpm_settings())
    assert plain.num_classes is None and plain.p_uncond == 0.0 and plain.weak is None


def test_the_weak_model_is_the_average_of_the_weights_after_its_step(tmp_cache, monkeypatch):
    """The weak U-Net stays out of the training and out of the average, then holds the averaged weights
    after step weak_step; the model holds the average after the last step."""
    settings = R.ddpm_settings(steps=4, batch_size=8, n_train=32, weak_at=0.5)
    after_step = []
    handle = register_optimizer_step_post_hook(
        lambda optimizer, args, kwargs: after_step.append(
            [p.detach().clone() for group in optimizer.param_groups for p in group["params"]]
        )
    )
    try:
        model, history = R.train_mnist_diffusion("ddpm_test", settings)
    finally:
        handle.remove()
    assert history.meta["steps"] == 4 and len(after_step) == 4
    torch.manual_seed(0)  # load_or_train's seed: the initial weights
    initial = [p.detach().clone() for p in R.mnist_diffusion_model(settings).net.parameters()]
    averages, average = [], initial
    for k, weights in enumerate(after_step, 1):
        d = min(settings.ema, (1 + k) / (10 + k))
        average = [d * a + (1 - d) * w for a, w in zip(average, weights)]
        averages.append(average)
    assert len(after_step[0]) == len(initial)  # only the net was trained, not the weak U-Net
    for got, expected in zip(model.net.parameters(), averages[-1]):
        torch.testing.assert_close(got.detach(), expected)
    for weak, expected in zip(model.weak.parameters(), averages[settings.weak_step - 1]):
        torch.testing.assert_close(weak.detach(), expected)
    again, history_again = R.train_mnist_diffusion("ddpm_test", settings)
    assert "loaded_from" in history_again.meta
    for a, b in zip(again.weak.parameters(), model.weak.parameters()):
        assert torch.equal(a, b)


def test_latent_diffusion_trains_in_the_vae_latent_space(tmp_cache, monkeypatch):
    """A stand-in for the course's VAE (``recipes.vae.mnist_vae``): latents of the right size, scaled to
    unit variance, a TimeMLP trained on them, and images decoded from sampled latents."""

    class TinyVAE(torch.nn.Module):
        latent_dim = 3

        def __init__(self):
            super().__init__()
            self.enc, self.dec = torch.nn.Linear(784, 3), torch.nn.Linear(3, 784)

        def encode(self, x):
            mu = 5 * self.enc(x.flatten(1))
            return mu, torch.zeros_like(mu)

        def decode(self, z):
            return torch.sigmoid(self.dec(z)).view(-1, 1, 28, 28)

    vae = TinyVAE()
    monkeypatch.setattr(R.vae_recipes, "mnist_vae", lambda: (vae, None))
    model, history = R.mnist_latent_diffusion()
    settings = R.latent_diffusion_settings(vae)
    assert isinstance(model, LatentDiffusion) and history.meta["steps"] == settings.steps
    assert model.diffusion.shape == (3,) and model.diffusion.net.dim == 3
    images = mnist(train=True).tensors("unit", n=settings.n_train)[0]
    assert model.encode(images).std().item() == pytest.approx(1.0, rel=1e-4)
    assert model.sample(4, steps=5).shape == (4, 1, 28, 28)
    assert not any(p.requires_grad for p in model.autoencoder.parameters())
    assert cache_path("latent_diffusion_mnist", settings).exists()
