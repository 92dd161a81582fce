"""Profiles, device choice and seeding.

Every notebook and benchmark asks ``profile().pick(smoke=..., lecture=..., full=...)`` how much work
to do; nothing else reads ``GENCOURSE_PROFILE``.

| profile     | default when        | purpose                                                     |
| ----------- | ------------------- | ----------------------------------------------------------- |
| ``smoke``   | CI and pytest set it | every code path once, tiny data and steps                  |
| ``lecture`` | always, unless set  | a notebook in minutes on a laptop CPU (or fast on a GPU)    |
| ``full``    | only when set       | longer training for one GPU; its settings are untested     |

The measured figures of the course's models (``benchmarks/results-<profile>.json``, rendered in
``benchmarks/results.md`` and ``docs/results.md``) come from the ``lecture`` profile on a 2-core CPU; the
``full`` profile has not been run yet.
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

PROFILES = ("smoke", "lecture", "full")
DEVICES = ("cpu", "cuda", "mps")
REPO_ROOT = Path(__file__).resolve().parents[1]

T = TypeVar("T")


@dataclass(frozen=True)
class Profile:
    """How much work to do. ``name`` is one of ``PROFILES``."""

    name: str

    def __post_init__(self):
        if self.name not in PROFILES:
            raise ValueError(f"unknown profile {self.name!r}; valid profiles are {', '.join(PROFILES)}")

    def pick(self, *, smoke: T, lecture: T, full: T) -> T:
        """The value for this profile, e.g. ``profile().pick(smoke=1, lecture=5, full=50)`` epochs."""
        return {"smoke": smoke, "lecture": lecture, "full": full}[self.name]

    @property
    def is_smoke(self) -> bool:
        return self.name == "smoke"

    def __str__(self) -> str:
        return self.name


def profile() -> Profile:
    """The active profile: ``$GENCOURSE_PROFILE``, else ``lecture`` on every device (a GPU then runs the
    lecture notebooks fast; ``full`` is opt-in, as its settings have never been trained)."""
    value = os.environ.get("GENCOURSE_PROFILE", "").strip().lower()
    if not value:
        return Profile("lecture")
    if value not in PROFILES:
        raise ValueError(
            f"GENCOURSE_PROFILE={os.environ['GENCOURSE_PROFILE']!r} is not a profile; "
            f"set it to one of: {', '.join(PROFILES)} (or unset it for the default)"
        )
    return Profile(value)


def device() -> torch.device:
    """``$GENCOURSE_DEVICE`` if set, else cuda, then mps, then cpu."""
    value = os.environ.get("GENCOURSE_DEVICE", "").strip().lower()
    if value:
        if value not in DEVICES:
            raise ValueError(f"GENCOURSE_DEVICE={value!r} is not a device; use one of: {', '.join(DEVICES)}")
        if value == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("GENCOURSE_DEVICE=cuda but torch sees no CUDA GPU; unset it to use the CPU")
        if value == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError("GENCOURSE_DEVICE=mps but this torch has no MPS support; unset it to use the CPU")
        return torch.device(value)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices) so the same seed gives the same numbers.

    Returns a CPU ``torch.Generator`` seeded the same way, for code that wants its own stream.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def data_dir() -> Path:
    """The default dataset root and cache location: the repository's ``data/`` folder in a checkout (an
    editable install), else ``~/.cache/gencourse`` (``$XDG_CACHE_HOME/gencourse``): where a package installed
    from the repository, as on Colab, downloads MNIST on first use and caches its trained models."""
    if (REPO_ROOT / "pyproject.toml").is_file():
        return REPO_ROOT / "data"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "gencourse"


def cache_dir() -> Path:
    """Where trained models are cached: ``$GENCOURSE_CACHE``, else ``data/cache``."""
    value = os.environ.get("GENCOURSE_CACHE")
    return Path(value).expanduser() if value else data_dir() / "cache"


def repository_url() -> str:
    """Where the course is published: ``Repository`` in pyproject.toml's ``[project.urls]`` (in a checkout),
    else in the installed package's metadata. The notebooks' Colab install cell
    (:func:`colab_install_block`) and the Colab badges use this address, and the tests check that they do."""
    pyproject = REPO_ROOT / "pyproject.toml"
    if pyproject.is_file():
        urls = re.search(r"^\[project\.urls\]\s*$(.*?)(?=^\[|\Z)", pyproject.read_text(), re.M | re.S)
        found = urls and re.search(r'^Repository\s*=\s*"([^"]+)"', urls.group(1), re.M)
        if found:
            return found.group(1)
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        for entry in metadata("gencourse").get_all("Project-URL") or []:
            label, _, url = entry.partition(",")
            if label.strip().lower() == "repository":
                return url.strip()
    except PackageNotFoundError:
        pass
    raise RuntimeError("the course's address is missing: set Repository in pyproject.toml's [project.urls]")


def colab_install_block(url: str | None = None) -> str:
    """The start of every notebook's setup cell: on Colab, install the course from ``url`` (default:
    :func:`repository_url`), after checking that the address can be reached, so that a wrong address fails
    with a message that says what to fix rather than with pip's traceback. Elsewhere it does nothing.

    The notebook cannot call this (on Colab the package is not installed yet when the cell runs): the
    notebooks hold a copy of the block, and ``tests/test_notebooks.py`` checks that it is this one."""
    url = url or repository_url()
    return f"""import subprocess
import sys

if "google.colab" in sys.modules:  # on Colab, install the course package first; elsewhere nothing to do
    import os

    REPOSITORY = "{url}"  # where the course is published
    quiet = {{**os.environ, "GIT_TERMINAL_PROMPT": "0"}}  # a missing repository fails instead of asking for a login
    found = subprocess.run(["git", "ls-remote", "--heads", REPOSITORY], capture_output=True, env=quiet, timeout=120)
    if found.returncode != 0:
        raise RuntimeError(
            f"Cannot install the course: {{REPOSITORY}} cannot be reached. This address must point at where the course "
            "is published (the Repository address in its pyproject.toml); ask your instructor for the right one."
        )
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"gencourse @ git+{{REPOSITORY}}"], check=True)
"""


def describe() -> str:
    """One line for a notebook's setup cell: profile, device, torch version."""
    return f"gencourse profile: {profile().name} | device: {device()} | torch {torch.__version__}"
