"""pytest runs the unit tests in tests/ and every notebook in notebooks/ (nbval, lax mode).

Tests check behaviour, not quality, so they default to the smoke profile; the notebook kernels inherit
the environment. Run a notebook in another profile with e.g. `GENCOURSE_PROFILE=lecture pytest notebooks/`.
"""

import os

os.environ.setdefault("GENCOURSE_PROFILE", "smoke")
