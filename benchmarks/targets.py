"""The course's targets and open questions, written by hand and free of measured figures: each target names
the figures it reads from the benchmark results (``benchmarks/results-<profile>.json``) and its thresholds;
``python -m benchmarks.report`` looks the figures up and renders the page ``docs/results.md``."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.diffusion import AUTOGUIDANCE, STEPS

DDPM_JUDGED = f"ddpm_mnist (y ~ p(y), DDIM {STEPS} steps, eta=1, autoguidance={AUTOGUIDANCE:g})"  # samples of p(x)


@dataclass(frozen=True)
class Criterion:
    """One checked figure: ``key`` is its path in ``results-<profile>.json``; a ``"*"`` in it takes every
    entry at that level, reduced by ``reduce`` (``min``, ``max``), so "on every training seed" reads the
    worst seed. ``kind`` says how to show it: ``share`` (a percentage), ``seconds``, ``count``, ``number``."""

    what: str
    profile: str
    key: tuple[str, ...]
    op: str  # "<=", ">=", ">", "<", "=="
    threshold: float
    kind: str = "number"
    reduce: str | None = None
    short: str = ""  # the figure's name in the README's compact table ("modes", "confident"...)


@dataclass(frozen=True)
class Target:
    """A promise of the course, met when every criterion is. ``tried`` names the experiments
    (``benchmarks/experiments/<name>.py``) behind its settings; ``gap`` says what would close it while it is
    not met (or not measured)."""

    name: str
    criteria: tuple[Criterion, ...]
    tried: tuple[str, ...] = ()
    gap: str = ""
    short: str = ""  # the target's name in the README's compact table


def _seeds(row: str, kind: str) -> Criterion:
    """The worst training seed's modes (``kind="count"``) or high-quality share of a 2D GAN (mean of its draws)."""
    if kind == "count":
        need = 8 if row.startswith("ring8") else 24
        return Criterion(
            "modes covered, worst training seed",
            "lecture",
            ("toy2d", row, "per_seed", "*", "modes"),
            ">=",
            need,
            "count",
            reduce="min",
            short="modes",
        )
    return Criterion(
        "high-quality share, worst training seed",
        "lecture",
        ("toy2d", row, "per_seed", "*", "high_quality"),
        ">=",
        0.9,
        "share",
        reduce="min",
        short="high quality",
    )


def _model(
    what: str, profile: str, model: str, key: str, op: str, threshold: float, kind: str = "number", short: str = ""
) -> Criterion:
    return Criterion(what, profile, ("models", model, key), op, threshold, kind, short=short)


def _time(model: str, seconds: float, key: str = "train_s", what: str = "training time", short="training") -> Criterion:
    return _model(what, "lecture", model, key, "<=", seconds, "seconds", short=short)


def _confident(model: str) -> tuple[Criterion, Criterion]:
    return (
        _model("confident share", "lecture", model, "confident", ">=", 0.8, "share", short="confident"),
        _model("digits present", "lecture", model, "classes_present", "==", 10, "count", short="digits"),
    )


DDIM_VS_DDPM = "ddpm_mnist (DDIM 50 steps, eta=1, vs DDPM)"

TARGETS: tuple[Target, ...] = (
    Target(
        "2D GAN on ring8: every mode, mostly high-quality samples, on every training seed",
        (_seeds("ring8 GAN", "count"), _seeds("ring8 GAN", "share")),
        short="2D GAN, ring8 (worst seed)",
    ),
    Target(
        "2D GAN on grid25 (batches of 1024, the course's remedy): nearly every mode on every training seed",
        (_seeds("grid25 GAN, batch 1024", "count"), _seeds("grid25 GAN, batch 1024", "share")),
        tried=("grid25_networks", "grid25_training"),
        gap="Larger batches are the one change tried that reached it on every seed; the networks and training "
        "schedules tried kept coverage or precision, not both.",
        short="2D GAN, grid25, batch 1024 (worst seed)",
    ),
    Target(
        "GAN on MNIST without labels (the InfoGAN) within the lecture budget",
        (_time("gan_infogan_mnist", 300), *_confident("gan_infogan_mnist")),
        tried=("dcgan_settings", "infogan_code_input"),
        gap="The DCGAN alone stays below the confident share at this budget; the InfoGAN's code closes it.",
        short="MNIST GAN without labels (InfoGAN)",
    ),
    Target(
        "VAE on binarized MNIST, lecture profile",
        (
            _model("test NLL (nats, IWAE)", "lecture", "vae_mnist", "nll_nats", "<=", 100, short="nats"),
            _time("vae_mnist", 300),
        ),
        short="VAE, MNIST test NLL",
    ),
    Target(
        "VAE on binarized MNIST, full profile (one GPU)",
        (_model("test NLL (nats, IWAE)", "full", "vae_mnist", "nll_nats", "<=", 88, short="nats"),),
        gap="Train and measure the full profile on a GPU: `python -m benchmarks.vae --profile full`.",
        short="VAE, full profile",
    ),
    Target(
        "Flow on 2D moons: clearly better than the best Gaussian",
        (
            Criterion(
                "test log-likelihood gain over the best Gaussian (nats per point)",
                "lecture",
                ("toy2d", "flow_moons", "gain_nats"),
                ">",
                1,
                short="nats gain",
            ),
        ),
        short="flow, 2D moons vs a Gaussian",
    ),
    Target(
        "Flow on dequantized MNIST, lecture profile",
        (
            _model("test bits/dim", "lecture", "flow_mnist", "bits_per_dim", "<=", 1.5, short="bits/dim"),
            _time("flow_mnist", 600),
        ),
        short="flow, MNIST bits/dim",
    ),
    Target(
        "Flow on dequantized MNIST, full profile (one GPU)",
        (_model("test bits/dim", "full", "flow_mnist", "bits_per_dim", "<=", 1.1, short="bits/dim"),),
        gap="Train and measure the full profile on a GPU: `python -m benchmarks.flows --profile full`.",
        short="flow, full profile",
    ),
    Target(
        "Pixel diffusion on MNIST (the notebook's sampler) within the lecture budget",
        (
            *_confident(DDPM_JUDGED),
            _time(DDPM_JUDGED, 600, "train_plus_sample_1000_s", "training + 1000 samples", "training + sampling"),
        ),
        tried=("ddpm_settings", "ddpm_budget", "ddpm_weak"),
        gap="The training settings plateaued below the confident share; autoguidance (a sampler) closed it. The "
        "time budget holds by a small margin on a CPU whose speed drifts.",
        short="pixel DDPM (autoguidance)",
    ),
    Target(
        "Latent diffusion on MNIST",
        _confident("latent_diffusion_mnist (DDIM 50)"),
        short="latent diffusion",
    ),
    Target(
        "DDIM with 50 steps against the full DDPM sampler: FID within 10%, at least 10x faster",
        (
            _model("FID / DDPM's FID", "lecture", DDIM_VS_DDPM, "fid_ratio_vs_ddpm", "<=", 1.1, short="x FID"),
            _model("speed-up over DDPM", "lecture", DDIM_VS_DDPM, "speedup_vs_ddpm", ">=", 10, short="x faster"),
        ),
        short="DDIM 50 steps vs DDPM",
    ),
    Target(
        "Every notebook in the smoke profile (CI) in under a minute",
        (
            Criterion(
                "slowest notebook",
                "smoke",
                ("notebooks_cold", "*", "seconds"),
                "<",
                60,
                "seconds",
                reduce="max",
                short="slowest",
            ),
        ),
        short="notebooks, smoke",
    ),
    Target(
        "Every notebook in the lecture profile, models cached, in about 90 s",
        (
            Criterion(
                "slowest notebook",
                "lecture",
                ("notebooks", "*", "seconds"),
                "<=",
                90,
                "seconds",
                reduce="max",
                short="slowest",
            ),
        ),
        gap="Notebook 07 samples from several diffusion models on a CPU: fewer sampling steps or fewer samples "
        "in its lecture settings, or a GPU.",
        short="notebooks, lecture, cached",
    ),
    Target(
        "Every notebook in the lecture profile from an empty model cache (a student's first run, training "
        "included) in at most 10 minutes",
        (
            Criterion(
                "slowest notebook",
                "lecture",
                ("notebooks_cold", "*", "seconds"),
                "<=",
                600,
                "seconds",
                reduce="max",
                short="slowest",
            ),
        ),
        gap="Fewer and smaller models in notebooks 02 and 03 (narrower 2D GANs lose modes: see toy_gan_width); "
        "notebook 07 already trains one conditional DDPM for unconditional sampling, guidance and autoguidance.",
        short="notebooks, lecture, empty cache",
    ),
)

OPEN_QUESTIONS: tuple[str, ...] = (
    "The `full` profile's settings have not been trained or measured yet: it needs one GPU run of "
    "`python -m benchmarks --profile full` and `python -m benchmarks.notebooks --profile full`.",
    "The plain 2D GAN's coverage of grid25 depends on the training seed, and the same computation spent on "
    "more steps at the usual batch size does not remove that; why larger batches do is open.",
    "The MNIST flow meets its likelihood target while the judge rates its samples the weakest of the course: "
    "would a larger flow fit the lecture budget?",
    "Judge FIDs on 1000 samples or fewer vary by several points from draw to draw; comparisons between "
    "settings quote the number of samples and are only meaningful on the same number.",
)
