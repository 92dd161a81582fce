"""gencourse: models, losses, samplers, metrics and training helpers for the generative-models course.

The course notebooks import what they do not teach from here. See ``DESIGN`` in the README for the
module map: ``config`` (profiles, device, seeding), ``data``, ``nn``, ``train``, ``plot``, ``metrics``,
``gan``, ``vae``, ``flows``, ``diffusion`` and ``exercises``.
"""

from gencourse.config import Profile, describe, device, profile, seed_everything

__all__ = ["Profile", "describe", "device", "profile", "seed_everything"]
__version__ = "0.1.0"
