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
from hypothesis.errors import InvalidArgument

_PROFILES = {
    "ci": {"max_examples": 200, "derandomize": True, "deadline": None, "print_blob": True},
    "soak": {"max_examples": 20_000, "derandomize": False, "deadline": None, "print_blob": True},
}
for _name, _values in _PROFILES.items():
    try:
        settings.get_profile(_name)
    except InvalidArgument:  # not registered yet by another conftest
        settings.register_profile(_name, **_values)  # type: ignore[arg-type]
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def scaled(ci_examples: int) -> int:
    """``ci_examples`` under the ci profile (200 examples), proportionally more under soak."""
    return max(1, ci_examples * settings.default.max_examples // 200)
