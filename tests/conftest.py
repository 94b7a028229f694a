"""Shared test set-up: the session's real Kafka broker (tests/kafka_broker.py) and the wheel of
this checkout (tests/wheel_build.py)."""

from __future__ import annotations

# A plugin rather than a plain import, so its fixture and its closing summary line both register.
pytest_plugins = ("tests.kafka_broker", "tests.wheel_build")
