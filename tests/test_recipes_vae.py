import dataclasses

import pytest
import torch
from recipe_checks import assert_frozen_and_documented

from gencourse.recipes import COURSE_MODELS, course_model_calls
from gencourse.recipes import vae as recipes_vae
from gencourse.vae import VAE, Autoencoder

SETTINGS = {
    "vae_mnist": recipes_vae.mnist_vae_settings,
    "ae_mnist_2d": recipes_vae.autoencoder_2d_settings,
    "vae_mnist_2d": recipes_vae.vae_2d_settings,
    "vae_mnist_beta": lambda: recipes_vae.beta_vae_settings(4.0),
    "cvae_mnist": recipes_vae.cvae_settings,
}


@pytest.mark.parametrize("profile", ["smoke", "lecture", "full"])
@pytest.mark.parametrize("name", list(SETTINGS))
def test_settings_build_in_every_profile_and_are_frozen(name, profile, monkeypatch):
    monkeypatch.setenv("GENCOURSE_PROFILE", profile)
    settings = SETTINGS[name]()
    assert (settings.steps == 40) == (profile == "smoke")
    assert settings.batch_size == (64 if profile == "smoke" else 128)
    assert settings.lr == 1e-3 and settings.lr_schedule == "cosine"
    assert (settings.n_train is None) == (profile != "smoke")
    assert_frozen_and_documented(settings)
    assert len(str(settings).splitlines()) == len(dataclasses.fields(settings)) + 1


@pytest.mark.parametrize(
    "profile, ch, decoder, dec_ch, dec_hidden, steps",
    [
        ("smoke", 8, "mlp", None, (64,), 40),
        ("lecture", 16, "mlp", None, (256, 512), 6000),
        ("full", 32, "conv", 64, (), 25_000),
    ],
)
def test_mnist_vae_settings_per_profile(profile, ch, decoder, dec_ch, dec_hidden, steps, monkeypatch):
    monkeypatch.setenv("GENCOURSE_PROFILE", profile)
    s = recipes_vae.mnist_vae_settings()
    assert (s.arch, s.latent_dim, s.ch, s.decoder, s.dec_ch, s.dec_hidden) == (
        "conv",
        16,
        ch,
        decoder,
        dec_ch,
        dec_hidden,
    )
    assert s.steps == steps and (s.num_classes, s.beta, s.free_bits, s.warmup_steps) == (0, 1.0, 0.0, 0)


@pytest.mark.parametrize(
    "profile, hidden, steps", [("smoke", (64,), 40), ("lecture", (256,), 1500), ("full", (256,), 6000)]
)
def test_beta_vae_settings_and_remedies(profile, hidden, steps, monkeypatch):
    monkeypatch.setenv("GENCOURSE_PROFILE", profile)
    plain = recipes_vae.beta_vae_settings(recipes_vae.COLLAPSE_BETA)
    assert (plain.arch, plain.latent_dim, plain.hidden, plain.steps) == ("mlp", 16, hidden, steps)
    assert (plain.beta, plain.free_bits, plain.warmup_steps) == (8.0, 0.0, 0)
    annealed = recipes_vae.beta_vae_settings(8.0, "kl_annealing")
    assert annealed.warmup_steps == steps // 2 and annealed.free_bits == 0.0
    free = recipes_vae.beta_vae_settings(8.0, "free_bits")
    assert free.free_bits == 0.25 and free.warmup_steps == 0
    assert recipes_vae.beta_vae_settings(4) == recipes_vae.beta_vae_settings(4.0)  # the same cache key
    with pytest.raises(ValueError, match="kl_annealing"):
        recipes_vae.beta_vae_settings(1.0, "dropout")


@pytest.mark.parametrize("profile, steps_2d, cvae_steps", [("lecture", 3000, 6000), ("full", 30000, 24000)])
def test_the_2d_models_and_the_cvae(profile, steps_2d, cvae_steps, monkeypatch):
    monkeypatch.setenv("GENCOURSE_PROFILE", profile)
    ae, vae2d, cvae = recipes_vae.autoencoder_2d_settings(), recipes_vae.vae_2d_settings(), recipes_vae.cvae_settings()
    assert (
        (ae.latent_dim, ae.hidden, ae.steps)
        == (vae2d.latent_dim, vae2d.hidden, vae2d.steps)
        == (2, (512, 256), steps_2d)
    )
    assert not hasattr(ae, "beta")  # an autoencoder has no KL term
    assert (cvae.latent_dim, cvae.hidden, cvae.num_classes, cvae.steps) == (2, (512, 256), 10, cvae_steps)


def test_build_vae_follows_the_settings(monkeypatch):
    monkeypatch.setenv("GENCOURSE_PROFILE", "smoke")
    conv = recipes_vae.build_vae(recipes_vae.mnist_vae_settings())
    assert isinstance(conv, VAE) and conv.latent_dim == 16 and conv.num_classes == 0
    assert any(isinstance(m, torch.nn.Conv2d) for m in conv.encoder.modules())
    assert not any(isinstance(m, torch.nn.Conv2d) for m in conv.decoder.modules())  # the smoke decoder is an MLP
    cvae = recipes_vae.build_vae(recipes_vae.cvae_settings())
    assert cvae.latent_dim == 2 and cvae.num_classes == 10
    assert not any(isinstance(m, torch.nn.Conv2d) for m in cvae.modules())


def test_registered_names_and_calls():
    assert {"vae_mnist", "ae_mnist_2d", "vae_mnist_2d", "vae_mnist_beta", "cvae_mnist"} <= set(COURSE_MODELS)
    assert COURSE_MODELS["vae_mnist"] is recipes_vae.mnist_vae
    labels = set(course_model_calls())
    assert {f"vae_mnist_beta(beta={b!r})" for b in recipes_vae.BETAS} <= labels
    assert {"vae_mnist_beta(beta=8.0, remedy='kl_annealing')", "vae_mnist_beta(beta=8.0, remedy='free_bits')"} <= labels


def test_a_recipe_trains_once_then_loads_from_the_cache(tmp_cache, monkeypatch):
    monkeypatch.setenv("GENCOURSE_PROFILE", "smoke")
    monkeypatch.setenv("GENCOURSE_PROGRESS", "0")
    model, history = recipes_vae.mnist_autoencoder_2d()
    assert isinstance(model, Autoencoder) and history.meta["steps"] == 40 and "loaded_from" not in history.meta
    again, history_again = recipes_vae.mnist_autoencoder_2d()
    assert "loaded_from" in history_again.meta
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
