"""What every part of one simulation run shares: the random stream, the clock and the emitter.

The run is a discrete-event simulation. Every future happening (a generation, a reviewer acting,
a complaint answered) is an action on a heap keyed by its time, so events reach ``emit`` in time
order and a later step can cite the ids that earlier emits returned. Anything due after the end
of the period is dropped: it has not happened yet, which is what leaves cases open at ``as_of``.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import random
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from aigc_audit.producers.events import AuditEvent

if TYPE_CHECKING:
    from aigc_audit.consumers.demo.simulation.plan import SimulationPlan

Emit = Callable[[str, AuditEvent], uuid.UUID]
"""Where the run sends each event: ``emit(service_id, event)`` returns the event id."""

Action = Callable[[datetime], object]
"""What :meth:`Runtime.at` runs; whatever it returns is not used."""

_MS = timedelta(milliseconds=1)


class Runtime:
    """The shared state of one run. Not thread-safe: a run is one deterministic sequence."""

    def __init__(self, plan: SimulationPlan, emit: Emit) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.start = plan.start
        self.as_of = plan.as_of
        self.counts: Counter[str] = Counter()
        self.last_emitted_at = datetime.min.replace(tzinfo=UTC)
        self._emit = emit
        self._heap: list[tuple[datetime, int, Action]] = []
        self._order = itertools.count()
        self._serials: Counter[str] = Counter()
        # Ids such as case and request ids are unique within a run by their serial number; the
        # seed's tag keeps runs with different seeds apart when both are emitted into one log.
        self.tag = hashlib.sha256(str(plan.seed).encode()).hexdigest()[:6]

    # -- the clock ---------------------------------------------------------------------------

    def at(self, when: datetime, action: Action) -> bool:
        """Run ``action(when)`` at ``when``; False (and nothing scheduled) if after ``as_of``."""
        if when > self.as_of:
            return False
        # The counter breaks ties in scheduling order, which keeps equal-time events stable.
        heapq.heappush(self._heap, (when, next(self._order), action))
        return True

    def run(self) -> None:
        """Run every scheduled action, and those they schedule, in time order."""
        heap = self._heap
        while heap:
            when, _, action = heapq.heappop(heap)
            action(when)

    def after(self, when: datetime, *, seconds: float) -> datetime:
        return when + timedelta(seconds=seconds)

    def between(self, low: datetime, high: datetime) -> datetime:
        """A uniformly random time in ``[low, high]``, to the millisecond."""
        span = (high - low) // _MS
        return low + self.rng.randint(0, max(span, 0)) * _MS

    def lognormal_seconds(self, median: float, sigma: float, *, low: float, high: float) -> float:
        """A delay with a long right tail, as human response times have, clamped to a range."""
        value = median * self.rng.lognormvariate(0.0, sigma)
        return min(max(value, low), high)

    # -- identities --------------------------------------------------------------------------

    def event_id(self, when: datetime) -> uuid.UUID:
        """A UUIDv7 for an event at ``when``, its random bits drawn from the run's stream.

        Same layout as :func:`producers.events.uuid7`, but reproducible for a seed.
        """
        ms = int(when.timestamp() * 1000) & ((1 << 48) - 1)
        rand = self.rng.getrandbits(74)
        value = ms << 80 | 0x7 << 76 | (rand >> 62) << 64 | 0x2 << 62 | (rand & ((1 << 62) - 1))
        return uuid.UUID(int=value)

    def serial(self, prefix: str, width: int = 5) -> str:
        """The next human-readable reference of a series, such as ``CMP-2025-3FA91C-00042``."""
        self._serials[prefix] += 1
        return f"{prefix}-{self.tag.upper()}-{self._serials[prefix]:0{width}d}"

    # -- output ------------------------------------------------------------------------------

    def emit(self, service_id: str, event: AuditEvent) -> uuid.UUID:
        """Hand ``event`` to the caller's emitter, counting it; returns the id emit returned."""
        event_id = self._emit(service_id, event)
        self.counts[event.EVENT_TYPE] += 1
        self.last_emitted_at = max(self.last_emitted_at, event.occurred_at)
        return event_id
