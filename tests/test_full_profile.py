"""The ``full`` profile, on paper and on the CPU: every course model is built with its ``full`` settings (the
networks, widths, schedules and data shapes a GPU will train) and runs two training steps through its recipe
and ``load_or_train``, then a small sampling call, so that no shape error waits for the GPU.

Only the batch (4 examples), the training set (16 images), the steps and the scoring during training are cut
down, so that every model fits in seconds and in little memory; what a full step costs at its real batch size is
``python -m benchmarks.cost`` (FLOPs) and ``python -m benchmarks.gpu_check`` (time and memory on a GPU).
"""

import pytest
import torch

from benchmarks.cost import course_models, overridden_recipes
from gencourse import metrics, recipes
from gencourse.diffusion import Diffusion, LatentDiffusion
from gencourse.flows import Flow
from gencourse.gan import GAN
from gencourse.vae import VAE, Autoencoder

SMALL = dict(steps=2, batch_size=4, n_train=16, n_eval=16, evaluations=1)
MODELS = {model.name: model for model in course_models()}


def test_every_registered_course_model_is_costed_and_checked_here():
    toy = ("gan_ring8_", "gan_grid25_")
    registered = {"gan_toy2d" if name.startswith(toy) else name for name in recipes.COURSE_MODELS}
    covered = {"gan_toy2d" if name.startswith("gan_toy2d_") else name for name in MODELS}
    assert registered == covered


def _sample(model) -> torch.Tensor:
    if isinstance(model, GAN):
        return model.sample(4)
    if isinstance(model, VAE):
        return model.sample(4, 3) if model.num_classes else model.sample(4)
    if isinstance(model, Autoencoder):
        return model.decode(torch.randn(4, model.code_dim))
    if isinstance(model, Flow):
        return model.sample(4, temperature=0.7)
    if isinstance(model, Diffusion):
        return model.sample(4, steps=3, y=torch.arange(4) if model.num_classes else None)
    if isinstance(model, LatentDiffusion):
        return model.sample(4, steps=3)
    raise TypeError(f"no sampling call for {type(model).__name__}")


@pytest.mark.parametrize("name", MODELS)
def test_full_settings_build_train_two_steps_and_sample(name, monkeypatch, tmp_path):
    monkeypatch.setenv("GENCOURSE_PROFILE", "full")
    metrics.reference_features()  # once per process, outside the recipes' temporary cache
    seen = {}
    with overridden_recipes(SMALL) as asked:
        from gencourse.train import load_or_train

        def recorded(model_name, build, train, settings, **kwargs):
            seen[model_name] = asked[settings]
            return load_or_train(model_name, build, train, settings, **kwargs)

        for module in (recipes.gan, recipes.vae, recipes.flows, recipes.diffusion):
            monkeypatch.setattr(module, "load_or_train", recorded)
        model, history = MODELS[name].call()
        samples = _sample(model)
    settings = next(reversed(seen.values()))  # the model's own (latent diffusion trains its VAE first)
    assert settings.steps > SMALL["steps"] and history.meta["steps"] == SMALL["steps"]
    assert torch.isfinite(samples).all()
    expected = (4, 2) if name.startswith(("gan_toy2d", "flow_toy2d")) else (4, 1, 28, 28)
    assert samples.shape == expected


def test_the_cost_of_a_training_step_is_counted_exactly(monkeypatch):
    """``benchmarks.cost`` counts one step at batch 4 and 8 and extrapolates to the real batch: for the smoke
    2D VAE (MLP 784 -> 64 -> 2 x 2, and 2 -> 64 -> 784) one step of 64 images is, by hand, 2 FLOPs per
    multiply-add forward, twice that backward, less the input gradient of the first layer (the data needs none)."""
    from benchmarks import cost

    monkeypatch.setenv("GENCOURSE_PROFILE", "smoke")
    vae_2d = next(m for m in cost.course_models() if m.name == "vae_mnist_2d")
    row = cost.cost(vae_2d, "smoke")
    layers = [784 * 64, 64 * 4, 2 * 64, 64 * 784]
    forward = 2 * sum(layers)
    assert row["batch_size"] == 64 and row["steps"] == 40
    assert row["flops_per_step"] == 64 * (forward + 2 * forward - 2 * layers[0])
    assert row["train_flops"] == 40 * row["flops_per_step"]
    assert row["parameters"] == sum(layers) + 64 + 4 + 64 + 784  # weights and biases
    assert row["gpu_minutes"] > 0 and row["cpu_minutes"] is None  # not calibrated


def _settings_makers() -> dict:
    """Each costed model's settings function (its settings in the active profile)."""
    R = recipes
    return {
        "gan_toy2d_gan": lambda: R.gan.toy_gan_settings("ring8", "gan"),
        "gan_toy2d_pacgan": lambda: R.gan.toy_gan_settings("ring8", "pacgan"),
        "gan_toy2d_largebatch": lambda: R.gan.toy_gan_settings("ring8", "largebatch"),
        "gan_dcgan_mnist": R.gan.dcgan_settings,
        "gan_conditional_mnist": R.gan.conditional_gan_settings,
        "gan_sngan_mnist": R.gan.sngan_settings,
        "gan_infogan_mnist": R.gan.infogan_settings,
        "ae_mnist_2d": R.vae.autoencoder_2d_settings,
        "vae_mnist_2d": R.vae.vae_2d_settings,
        "vae_mnist": R.vae.mnist_vae_settings,
        "vae_mnist_beta": lambda: R.vae.beta_vae_settings(R.vae.COLLAPSE_BETA, "kl_annealing"),
        "cvae_mnist": R.vae.cvae_settings,
        "flow_toy2d": lambda: R.flows.toy_flow_settings("moons"),
        "flow_mnist": R.flows.mnist_flow_settings,
        "ddpm_mnist": R.diffusion.mnist_ddpm_settings,
        "latent_diffusion_mnist": lambda: R.diffusion.latent_diffusion_settings(torch.nn.Linear(2, 2)),
    }


# the settings that measure how much a model learns from: its size, its data, its training
AT_LEAST = ("steps", "batch_size", "T", "latent_dim", "hidden", "depth", "num_layers", "ch", "dec_ch", "g_ch", "d_ch")
AT_LEAST += ("ch_mult", "blocks", "flow_steps", "n_eval", "evaluations")


@pytest.mark.parametrize("name", MODELS)
def test_full_trains_every_model_at_least_as_much_as_lecture(name, monkeypatch):
    """The full profile is the lecture's model, never smaller nor trained less: more steps, and sizes, batches
    and data at least the lecture's (a tuple entry by entry); the kind of model (the loss, the variant) is
    the same."""
    make = _settings_makers()[name]
    monkeypatch.setenv("GENCOURSE_PROFILE", "lecture")
    torch.manual_seed(0)
    lecture = make()
    monkeypatch.setenv("GENCOURSE_PROFILE", "full")
    torch.manual_seed(0)
    full = make()
    assert type(full) is type(lecture)
    assert full.steps > lecture.steps
    for field in AT_LEAST:
        small, large = getattr(lecture, field, None), getattr(full, field, None)
        if small is None or large is None:
            continue
        if isinstance(small, tuple):
            assert len(large) == len(small) and all(b >= a for a, b in zip(small, large)), (field, small, large)
        else:
            assert large >= small, (field, small, large)
    assert getattr(lecture, "n_train", None) is None or getattr(full, "n_train", 0) is None
    for field in ("kind", "pack", "conditional", "spectral_norm", "codes", "num_classes", "beta", "p_uncond"):
        assert getattr(full, field, None) == getattr(lecture, field, None), field


def test_every_costed_model_has_its_settings_here():
    assert set(_settings_makers()) == set(MODELS)
