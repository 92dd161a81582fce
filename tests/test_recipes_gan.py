"""The course's GANs (gencourse.recipes.gan): their settings per profile, their names, and that each recipe
builds and trains what its settings say."""

import dataclasses

import pytest
import torch
from recipe_checks import assert_frozen_and_documented

from gencourse import gan, recipes
from gencourse.recipes import gan as R

MNIST_SETTINGS = {
    "gan_dcgan_mnist": R.dcgan_settings,
    "gan_conditional_mnist": R.conditional_gan_settings,
    "gan_sngan_mnist": R.sngan_settings,
    "gan_infogan_mnist": R.infogan_settings,
}
TOY_NAMES = [f"gan_{d}_{v}" for d in R.TOY_DATASETS for v in R.TOY_VARIANTS]


def all_settings():
    toy = [R.toy_gan_settings(d, v) for d in R.TOY_DATASETS for v in R.TOY_VARIANTS]
    return toy + [make() for make in MNIST_SETTINGS.values()]


@pytest.mark.parametrize(
    ("profile", "toy_steps", "mnist_steps", "mnist_lr"),
    [("smoke", 60, 20, 2e-3), ("lecture", 6000, 2000, 2e-3), ("full", 20000, 15000, 1e-3)],
)
def test_settings_build_in_every_profile_are_frozen_and_show_every_field(
    monkeypatch, profile, toy_steps, mnist_steps, mnist_lr
):
    monkeypatch.setenv("GENCOURSE_PROFILE", profile)
    for settings in all_settings():
        assert_frozen_and_documented(settings)
        assert settings.lr_schedule == "linear"
        if isinstance(settings, R.ToyGANSettings):
            assert (settings.steps, settings.lr, settings.seed) == (toy_steps, 1e-3, 0)
        else:
            assert (settings.steps, settings.lr) == (mnist_steps, mnist_lr)


def test_toy_variants_and_seeds_and_unknown_names_are_refused():
    for name, variant in R.TOY_VARIANTS.items():
        assert variant.batch_size % variant.pack == 0, "a packed discriminator needs whole packs"
        settings = R.toy_gan_settings("grid25", name)
        assert (settings.pack, settings.batch_size) == (variant.pack, variant.batch_size)
    assert R.toy_gan_settings("ring8", "gan", seed=2).seed == 2
    assert R.toy_gan_settings("ring8", "gan", seed=2) != R.toy_gan_settings("ring8", "gan")
    with pytest.raises(ValueError, match="variants .*largebatch"):
        R.toy_gan("ring8", "minibatch")
    with pytest.raises(ValueError, match="datasets .*grid25"):
        R.toy_gan_settings("spiral", "gan")


def test_each_mnist_model_differs_from_the_dcgan_in_what_its_name_says():
    base = dataclasses.asdict(R.dcgan_settings())

    def changed(settings):
        return {k: v for k, v in dataclasses.asdict(settings).items() if base[k] != v}

    assert changed(R.conditional_gan_settings()) == {"conditional": True}
    assert changed(R.sngan_settings()) == {"kind": "hinge", "spectral_norm": True}
    assert changed(R.infogan_settings()) == {"codes": 10}


def test_the_gan_recipes_are_registered_under_their_names():
    calls = recipes.course_model_calls()
    for name in TOY_NAMES + list(MNIST_SETTINGS):
        assert recipes.COURSE_MODELS[name].__module__ == "gencourse.recipes.gan"
        assert name in calls
    assert sorted(n for n in recipes.COURSE_MODELS if n.startswith("gan_")) == sorted(TOY_NAMES + list(MNIST_SETTINGS))


def _captured(monkeypatch, call):
    """What a recipe passes to load_or_train: (name, the model its build() makes, its settings, seed)."""
    seen = {}

    def fake(name, build, train, settings, seed=0):
        seen.update(name=name, model=build(), settings=settings, seed=seed)
        return seen["model"], None

    monkeypatch.setattr(R, "load_or_train", fake)
    call()
    return seen


@pytest.mark.parametrize("name", list(MNIST_SETTINGS))
def test_an_mnist_recipe_builds_what_its_settings_say(monkeypatch, name):
    seen = _captured(monkeypatch, recipes.COURSE_MODELS[name])
    settings, model = seen["settings"], seen["model"]
    assert seen["name"] == name and settings == MNIST_SETTINGS[name]()  # the settings a notebook shows
    assert model.codes == settings.codes and model.latent_dim == settings.latent_dim
    assert model.num_classes == (10 if settings.conditional else None)
    assert model.discriminator.encoder.features[0].out_channels == settings.d_ch
    has_batch_norm = any(isinstance(m, torch.nn.BatchNorm2d) for m in model.discriminator.modules())
    assert has_batch_norm != settings.spectral_norm  # spectral normalization replaces D's batch norm


def test_a_toy_recipe_builds_what_its_settings_say_and_passes_its_seed(monkeypatch):
    seen = _captured(monkeypatch, lambda: R.toy_gan("grid25", "pacgan", seed=3))
    assert seen["name"] == "gan_grid25_pacgan" and seen["seed"] == 3
    assert seen["settings"] == R.toy_gan_settings("grid25", "pacgan", seed=3)
    model = seen["model"]
    assert isinstance(model.discriminator, gan.MLPDiscriminator) and model.discriminator.pack == 4
    widths = [m.out_features for m in model.generator.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [*seen["settings"].hidden, 2]


def test_a_toy_recipe_trains_and_tracks_its_modes(tmp_cache):
    model, history = R.toy_gan("ring8", "gan")
    settings = R.toy_gan_settings("ring8", "gan")
    assert history.meta["steps"] == settings.steps and len(history["modes"]) >= 2
    assert history.meta["eval_seconds"] > 0
    assert model.sample(4).shape == (4, 2)
    again, cached = R.toy_gan("ring8", "gan")
    assert "loaded_from" in cached.meta
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
