"""Shared set-up of the differential tests (tests/differential): each module drives one pair of
a fast path and the exact path that compute the same verdict, on generated valid and damaged
inputs, and asserts the two agree.

Hypothesis profiles as in tests/security: ``ci`` (the default) a fixed, derandomized set of
examples, sized so that the whole directory runs in well under a minute on two cores; ``soak``
many more random ones (``HYPOTHESIS_PROFILE=soak .venv/bin/python -m pytest tests/differential``).
Tests whose examples are slow scale their ``max_examples`` from ``settings.default.max_examples``
so that the soak profile scales them too.
"""

from __future__ import annotations

import os

from hypothesis import settings

# The same profiles as tests/security/conftest.py registers (whichever registers last, they
# are one); hypothesis has a "ci" profile of its own, which these replace. Each test here sets
# its own deadline (None: a poll through chDB or a bundle verification takes milliseconds).
settings.register_profile("ci", max_examples=200, derandomize=True, deadline=1000, print_blob=True)
settings.register_profile(
    "soak", max_examples=20_000, derandomize=False, deadline=2000, print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def scaled(ci_examples: int) -> int:
    """``ci_examples`` under the ci profile (200 examples), proportionally more under soak."""
    return max(1, ci_examples * settings.default.max_examples // 200)
