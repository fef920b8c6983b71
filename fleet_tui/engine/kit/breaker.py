"""Circuit breakers: stop calling something that keeps failing, probe it again later.

Closed -> (failure_threshold failures within window_s) -> open for open_s -> half-open,
where one probe at a time is admitted: a success closes the breaker, a failure reopens it.
The clock is injectable so that tests drive time instead of sleeping.
"""

from __future__ import annotations

import time
from collections import deque
from enum import StrEnum
from typing import Any, TypedDict
from collections.abc import Callable

Clock = Callable[[], float]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        window_s: float = 60.0,
        open_s: float = 30.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        self.name = name
        self.failure_threshold = failure_threshold
        self.window_s = window_s
        self.open_s = open_s
        self._clock = clock
        self._failures: deque[float] = deque()
        self._state = BreakerState.CLOSED
        self._opened_at: float | None = None
        self._probe_in_flight = False
        self.times_opened = 0

    @property
    def state(self) -> BreakerState:
        # Open turns half-open lazily, on read, once the open period has passed.
        if self._state is BreakerState.OPEN and self._opened_at is not None:
            if self._clock() - self._opened_at >= self.open_s:
                self._state = BreakerState.HALF_OPEN
                self._probe_in_flight = False
        return self._state

    def allow(self) -> bool:
        """May a call go through now? In half-open, admits exactly one probe until it reports."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN:
            return False
        if self._probe_in_flight:
            return False
        self._probe_in_flight = True
        return True

    def would_allow(self) -> bool:
        """Like allow() but without claiming the half-open probe (for routing previews)."""
        state = self.state
        return state is BreakerState.CLOSED or (
            state is BreakerState.HALF_OPEN and not self._probe_in_flight
        )

    def record_success(self) -> None:
        if self.state is BreakerState.HALF_OPEN:
            self._close()
        elif self._state is BreakerState.CLOSED:
            self._prune(self._clock())

    def record_failure(self) -> None:
        now = self._clock()
        state = self.state
        if state is BreakerState.HALF_OPEN:
            self._open(now)
            return
        if state is BreakerState.OPEN:
            return  # a late report from a call started before opening changes nothing
        self._failures.append(now)
        self._prune(now)
        if len(self._failures) >= self.failure_threshold:
            self._open(now)

    def reset(self) -> None:
        self._close()

    def retry_in(self) -> float:
        """Seconds until an open breaker turns half-open (0 when not open)."""
        if self.state is not BreakerState.OPEN or self._opened_at is None:
            return 0.0
        return max(0.0, self.open_s - (self._clock() - self._opened_at))

    def snapshot(self) -> dict[str, Any]:
        now = self._clock()
        self._prune(now)
        return {
            "name": self.name,
            "state": str(self.state),
            "recent_failures": len(self._failures),
            "failure_threshold": self.failure_threshold,
            "retry_in_s": round(self.retry_in(), 3),
            "times_opened": self.times_opened,
        }

    def export(self) -> dict[str, Any]:
        """The state, to be kept elsewhere (fleet_breakers) and load()ed into another."""
        return {"state": str(self._state), "failures": list(self._failures), "opened_at": self._opened_at,
                "probe_in_flight": self._probe_in_flight, "times_opened": self.times_opened}

    def load(self, data: dict[str, Any]) -> None:
        self._state = BreakerState(data.get("state", BreakerState.CLOSED))
        self._failures = deque(float(t) for t in data.get("failures", []))
        self._opened_at = data.get("opened_at")
        self._probe_in_flight = bool(data.get("probe_in_flight", False))
        self.times_opened = int(data.get("times_opened", 0))

    def _prune(self, now: float) -> None:
        while self._failures and now - self._failures[0] > self.window_s:
            self._failures.popleft()

    def _open(self, now: float) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = now
        self._failures.clear()
        self._probe_in_flight = False
        self.times_opened += 1

    def _close(self) -> None:
        self._state = BreakerState.CLOSED
        self._opened_at = None
        self._failures.clear()
        self._probe_in_flight = False


class BreakerDefaults(TypedDict):
    failure_threshold: int
    window_s: float
    open_s: float


class BreakerRegistry:
    """Breakers by name (e.g. "model:claude-opus-4", "adapter:notify"), made on first use."""

    def __init__(
        self,
        *,
        clock: Clock = time.monotonic,
        failure_threshold: int = 5,
        window_s: float = 60.0,
        open_s: float = 30.0,
    ) -> None:
        self._clock = clock
        self._defaults: BreakerDefaults = {
            "failure_threshold": failure_threshold,
            "window_s": window_s,
            "open_s": open_s,
        }
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, name: str) -> CircuitBreaker:
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = CircuitBreaker(name, clock=self._clock, **self._defaults)
            self._breakers[name] = breaker
        return breaker

    # The authority's interface (async, so that a registry kept in the database fits it):
    async def allow(self, name: str) -> bool:
        return self.get(name).allow()

    async def record(self, name: str, ok: bool) -> None:
        breaker = self.get(name)
        breaker.record_success() if ok else breaker.record_failure()

    async def refresh(self, conn: Any = None) -> None:
        """Bring the sync views (peek, open_names, snapshot) up to date (conn: read on the
        caller's connection); nothing to do here."""

    def peek(self, name: str) -> CircuitBreaker | None:
        return self._breakers.get(name)

    def open_names(self) -> list[str]:
        return sorted(n for n, b in self._breakers.items() if b.state is BreakerState.OPEN)

    def snapshot(self) -> list[dict[str, Any]]:
        return [self._breakers[name].snapshot() for name in sorted(self._breakers)]
