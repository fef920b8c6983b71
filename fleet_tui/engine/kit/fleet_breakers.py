"""Circuit breakers shared by every conductor of a fleet, kept in PostgreSQL (fleet_breakers):
five failures of a model or an adapter anywhere in the fleet open it everywhere, and in
half-open exactly one probe runs fleet-wide. The rules are engine.kit.breaker's; this only keeps
their state in the database, changed under a row lock. Sync reads (routing previews, health)
see the state as of the last change or refresh made here; refreshes read the database at
most once per max_age_s (1 s), so a change elsewhere in the fleet shows within that."""

from __future__ import annotations

import time
from typing import Any, TypeVar
from collections.abc import Callable

from fleet_tui.engine.kit.breaker import BreakerRegistry, CircuitBreaker
from fleet_tui.store import breakers as breaker_store
from fleet_tui.store.db import Database, system_read

T = TypeVar("T")


class SharedBreakerRegistry(BreakerRegistry):
    def __init__(self, db: Database, *, max_age_s: float = 1.0, **defaults: Any) -> None:
        super().__init__(clock=time.time, **defaults)  # wall clock: conductors compare times
        self._db = db
        self.max_age_s = max_age_s  # how stale a refreshed view may be (previews, routes)
        self._read_at = float("-inf")  # time.monotonic() before the last read of every state

    async def allow(self, name: str) -> bool:
        return await self._change(name, lambda b: b.allow())

    async def record(self, name: str, ok: bool) -> None:
        await self._change(name, lambda b: b.record_success() if ok else b.record_failure())

    async def refresh(self, conn: Any = None) -> None:
        """Every breaker as the fleet has it, read at most once per max_age_s: a spawn's route,
        a preview, the health panel ask often; the decisive allow() reads under the row lock."""
        started = time.monotonic()
        if started - self._read_at < self.max_age_s:
            return
        async with system_read(conn or self._db) as scope:
            states = await breaker_store.all_states(scope)
        self._read_at = started
        for name, state in states.items():  # a name never recorded in the fleet stays as it is here
            self._breakers[name] = self._restore(name, state)

    async def _change(self, name: str, change: Callable[[CircuitBreaker], T]) -> T:
        async with self._db.system() as conn:
            breaker = self._restore(name, await breaker_store.lock(conn, name))
            result = change(breaker)
            await breaker_store.save(conn, name, breaker.export())
        self._breakers[name] = breaker
        return result

    def _restore(self, name: str, state: dict[str, Any] | None) -> CircuitBreaker:
        breaker = CircuitBreaker(name, clock=self._clock, **self._defaults)
        breaker.load(state or {})
        return breaker
