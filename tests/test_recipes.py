"""The recipes registry and the settings base shared by every family's recipes."""

import dataclasses

import pytest

from gencourse import recipes
from gencourse.recipes import Settings, setting


def test_course_model_registry_refuses_duplicates():
    @recipes.course_model("test-only-model")
    def first():
        return None

    try:
        assert recipes.COURSE_MODELS["test-only-model"] is first
        with pytest.raises(ValueError, match="already registered"):
            recipes.course_model("test-only-model")(lambda: None)
    finally:
        del recipes.COURSE_MODELS["test-only-model"]


def test_course_model_variants_expand_into_labelled_calls():
    seen = []

    @recipes.course_model("test-variants", variants=[{"beta": 0.5}, {"beta": 4.0}])
    def beta_model(beta=1.0):
        seen.append(beta)
        return beta

    try:
        calls = recipes.course_model_calls({"test-variants": beta_model})
        assert list(calls) == ["test-variants(beta=0.5)", "test-variants(beta=4.0)"]
        assert [call() for call in calls.values()] == [0.5, 4.0] == seen
    finally:
        del recipes.COURSE_MODELS["test-variants"]


@dataclasses.dataclass(frozen=True)
class _Example(Settings):
    steps: int = setting("optimizer steps")
    lr: float = setting("peak learning rate")
    hidden: tuple = setting("hidden layer widths")


def test_settings_are_frozen_and_shown_with_their_meaning():
    example = _Example(steps=3000, lr=2e-3, hidden=(256,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        example.steps = 1
    table = example._repr_markdown_()
    assert "| `steps` | 3000 | optimizer steps |" in table
    assert "| `lr` | 0.002 | peak learning rate |" in table and "| `hidden` | (256,) |" in table
    text = str(example).splitlines()
    assert text[0] == "_Example" and text[1].split() == ["steps", "3000", "optimizer", "steps"]
    assert example.as_dict() == {"steps": 3000, "lr": 2e-3, "hidden": (256,)}


def test_every_registered_recipe_lives_in_the_recipes_package():
    toy_gans = {f"gan_{data}_{variant}" for data in ("ring8", "grid25") for variant in ("gan", "pacgan", "largebatch")}
    mnist_gans = {f"gan_{kind}_mnist" for kind in ("dcgan", "conditional", "sngan", "infogan")}
    vaes = {"ae_mnist_2d", "vae_mnist_2d", "vae_mnist", "vae_mnist_beta", "cvae_mnist"}
    others = {"flow_toy2d", "flow_mnist", "ddpm_mnist", "latent_diffusion_mnist"}  # one DDPM for all of 07
    assert set(recipes.COURSE_MODELS) == toy_gans | mnist_gans | vaes | others
    for name, fn in recipes.COURSE_MODELS.items():
        assert fn.__module__.startswith("gencourse.recipes."), (name, fn.__module__)
