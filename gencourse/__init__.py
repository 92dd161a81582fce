"""gencourse: models, losses, samplers, metrics and training helpers for the generative-models course.

The course notebooks import what they do not teach from here. One module per idea:

- ``config`` (profiles, device, seeding), ``data`` (toy distributions, MNIST, transforms), ``checks`` (the
  argument checks of every public entry point), ``nn`` (shared building blocks), ``train`` (the training
  loop, learning-rate schedules, the model cache), ``plot``, ``metrics`` (divergences, FID, the MNIST judge),
  ``downstream`` (semi-supervised probes, anomaly scores), ``exercises`` (the checkers of the exercises);
- the families ``gan``, ``vae``, ``flows`` and ``diffusion``: math, networks and training steps, each
  standing alone;
- ``recipes``: the course's trained models (settings per profile, cached), the only place that composes
  families; ``pretrain``, ``student`` and ``export`` are the teaching commands.
"""

from gencourse.config import Profile, describe, device, profile, seed_everything

__all__ = ["Profile", "describe", "device", "profile", "seed_everything"]
__version__ = "0.1.0"
