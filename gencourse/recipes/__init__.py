"""The course's trained models: which network, which data, which settings, per profile.

The family modules (``gencourse.gan``, ``vae``, ``flows``, ``diffusion``) hold the math, the networks and
their training steps, and know nothing of the course. A recipe composes them into one of the models the
notebooks train: its settings are a frozen dataclass built for the active profile (printed as a table in
the notebook that introduces the model; the cache key is derived from it), and its function returns
``(model, history)`` through :func:`gencourse.train.load_or_train`, so the notebooks, ``pretrain`` and the
benchmarks get the very same cached model. This is the only place that composes families (latent
diffusion is the VAE recipe's model plus the diffusion math).

    from gencourse import recipes
    recipes.gan.dcgan_settings()        # the settings, as a table
    gan, history = recipes.gan.dcgan_mnist()
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable

COURSE_MODELS: dict[str, Callable] = {}


def setting(doc: str, default=dataclasses.MISSING):
    """A settings field with a one-line explanation, shown beside its value in :meth:`Settings.table`."""
    return dataclasses.field(default=default, metadata={"doc": doc})


@dataclasses.dataclass(frozen=True)
class Settings:
    """The base of every recipe's settings: a frozen dataclass whose fields are everything that changes the
    trained model (so its fields are the cache key), shown as a table of setting, value and meaning."""

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def rows(self) -> list[tuple[str, str, str]]:
        return [(f.name, _show(getattr(self, f.name)), f.metadata.get("doc", "")) for f in dataclasses.fields(self)]

    def table(self) -> str:
        """The settings as a Markdown table."""
        lines = [f"**{self.title()}**", "", "| setting | value | meaning |", "| --- | --- | --- |"]
        return "\n".join(lines + [f"| `{name}` | {value} | {doc} |" for name, value, doc in self.rows()])

    def title(self) -> str:
        return type(self).__name__

    def _repr_markdown_(self) -> str:
        return self.table()

    def __str__(self) -> str:
        rows = self.rows()
        width = max(len(name) for name, _, _ in rows)
        value_width = max(len(value) for _, value, _ in rows)
        lines = [self.title()] + [
            f"  {name:<{width}}  {value:<{value_width}}  {doc}".rstrip() for name, value, doc in rows
        ]
        return "\n".join(lines)


def _show(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return str(value)


def course_model(name: str, variants: Iterable[dict] | None = None):
    """Register a function that returns ``(model, history)`` for one of the course's trained models,
    built and trained exactly as its notebook does (through ``load_or_train``), so that pretraining
    and benchmarks use the very same models.

    ``variants`` lists the keyword arguments the notebook calls it with when it trains several versions
    (e.g. ``[{"beta": 0.5}, {"beta": 4.0}]``); by default it is called once with none.
    """

    def register(fn):
        if name in COURSE_MODELS and COURSE_MODELS[name] is not fn:
            raise ValueError(f"a course model named {name!r} is already registered")
        COURSE_MODELS[name] = fn
        fn.course_model_name = name
        fn.variants = [dict(v) for v in variants] if variants is not None else [{}]
        return fn

    return register


def call_label(name: str, kwargs: dict) -> str:
    """How a call is named in ``pretrain --list`` and accepted by ``--only``: ``name`` or ``name(beta=4.0)``."""
    return name + (f"({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})" if kwargs else "")


def course_model_calls(models: dict[str, Callable] | None = None) -> dict[str, Callable]:
    """Every call that trains a course model, by label (``name`` or ``name(beta=4.0)``), ready to run."""
    calls = {}
    for name, fn in (COURSE_MODELS if models is None else models).items():
        for kwargs in getattr(fn, "variants", [{}]):
            calls[call_label(name, kwargs)] = functools.partial(fn, **kwargs)
    return calls


from gencourse.recipes import diffusion, flows, gan, vae  # noqa: E402  (they register their models)

__all__ = ["COURSE_MODELS", "Settings", "course_model", "course_model_calls", "diffusion", "flows", "gan", "vae"]
