"""Shared test set-up: the session's real Kafka broker (tests/kafka_broker.py), the wheel of
this checkout (tests/wheel_build.py), and the markers that select the suite's real subsets.

Markers (declared in pyproject.toml) are applied here, from what a test uses, so that a new test
gets them without remembering to:

* ``kafka``: the test asks for the session broker (a fixture in :data:`KAFKA_FIXTURES`, directly
  or through another fixture). Tests that start a broker of their own, or run the CLI against
  one in a subprocess, carry an explicit ``pytestmark``.
* ``install``: the test asks for the wheel (:data:`INSTALL_FIXTURES`), to install it.
* ``chdb``: the test, or one of the fixtures it uses, opens the real engine: its code names one
  of :data:`CHDB_SIGNS` (a store, a deployment or harness whose store it reads, chDB itself).
  A test that only reaches chDB through a helper function or a subprocess carries an explicit
  mark; one that opens chDB unmarked is listed at the end of the run.

``make test`` runs everything (no marker is excluded by default); ``make test-fast`` runs
``-m "not kafka and not install and not slow"``. A test that asks for the session broker
without the ``kafka`` marker is an error before the broker starts, so ``-m "not kafka"`` can
never start one.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

# A plugin rather than a plain import, so its fixture and its closing summary line both register.
pytest_plugins = ("tests.kafka_broker", "tests.wheel_build")

KAFKA_FIXTURES = frozenset({"kafka_broker"})
INSTALL_FIXTURES = frozenset({"built_wheel"})
CHDB_SIGNS = ("EmbeddedStore(", "Harness(", "Deployment(", "chdb")


TESTS = Path(__file__).resolve().parent


@functools.cache
def _source(function: Callable[..., Any]) -> str:
    """The source of a test or fixture of this suite ("" for pytest's and plugins' own)."""
    try:
        if not Path(inspect.getsourcefile(function) or "/").resolve().is_relative_to(TESTS):
            return ""
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


def _uses_chdb(item: pytest.Item) -> bool:
    functions = [getattr(item, "function", None)]
    info = getattr(item, "_fixtureinfo", None)
    for name in getattr(item, "fixturenames", ()):
        for fixturedef in info.name2fixturedefs.get(name, ()) if info else ():
            functions.append(fixturedef.func)
    return any(
        sign in _source(function) for function in functions if function for sign in CHDB_SIGNS
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & KAFKA_FIXTURES:
            item.add_marker(pytest.mark.kafka)
        if names & INSTALL_FIXTURES:
            item.add_marker(pytest.mark.install)
        if item.get_closest_marker("chdb") is None and _uses_chdb(item):
            item.add_marker(pytest.mark.chdb)


class _KafkaGuard:
    """Refuses to start the session's broker for a test without the kafka marker (the error
    names the test; later Kafka tests of the session see the same error). A plugin of its own:
    a session-scoped fixture is set up by the session, which a conftest's hooks do not see."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef[Any]) -> None:
        if fixturedef.argname in KAFKA_FIXTURES and _current:
            item = _current[-1]
            if item.get_closest_marker("kafka") is None:
                raise RuntimeError(
                    f"{item.nodeid} asks for the Kafka broker but is not marked kafka (mark "
                    "it, or ask for kafka_broker as a fixture argument, which marks it)"
                )


# Tests that opened chDB without the chdb marker, for the closing summary.
_unmarked_chdb: list[str] = []
_current: list[pytest.Item] = []


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_KafkaGuard(), "aigc-audit-kafka-guard")
    try:
        from aigc_audit.consumers.store import embedded
    except ImportError:  # no platform extra: nothing here opens chDB
        return
    opened = embedded.EmbeddedStore.__init__

    @functools.wraps(opened)
    def noting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        if _current and _current[-1].get_closest_marker("chdb") is None:
            _unmarked_chdb.append(_current[-1].nodeid)
        opened(self, *args, **kwargs)

    embedded.EmbeddedStore.__init__ = noting_init  # type: ignore[method-assign]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, Any]:
    _current.append(item)
    try:
        return (yield)
    finally:
        _current.pop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _unmarked_chdb:
        terminalreporter.write_line(
            f"opened chDB without the chdb marker ({len(set(_unmarked_chdb))}): "
            + ", ".join(sorted(set(_unmarked_chdb)))
        )
