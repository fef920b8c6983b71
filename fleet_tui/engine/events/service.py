"""The router wired for an engine: policy cache, adapters, breakers, runner, admin and the
dead-letter queue, built once. The conductor keeps one (conductor.router), which the
composition root (engine/session.py build_router) builds with the engine's StepServices."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

from fleet_tui.engine.kit.breaker import BreakerRegistry
from fleet_tui.engine.kit.fleet_breakers import SharedBreakerRegistry
from fleet_tui.engine.events.adapters import AdapterRegistry, builtin_adapters
from fleet_tui.engine.events.admin import RouterAdmin
from fleet_tui.engine.events.resolve import CACHE_TTL_S, PolicyCache
from fleet_tui.engine.events.runner import Router, RunResult, Sleep, WallClock, utc_now
from fleet_tui.engine.events.step_services import StepServices
from fleet_tui.store.db import Database

if TYPE_CHECKING:
    from fleet_tui.engine.events.dlq import DeadLetterQueue


@dataclass
class RouterService:
    cache: PolicyCache
    adapters: AdapterRegistry
    breakers: BreakerRegistry
    router: Router
    admin: RouterAdmin
    dlq: DeadLetterQueue

    @classmethod
    def build(cls, db: Database, *, services: StepServices | None = None,
              adapters: AdapterRegistry | None = None, clock: Callable[[], float] = time.monotonic,
              wall_clock: WallClock = utc_now, sleep: Sleep | None = None,
              ttl_s: float = CACHE_TTL_S) -> RouterService:
        import asyncio

        from fleet_tui.engine.events.dlq import DeadLetterQueue

        adapters = adapters or builtin_adapters()
        cache = PolicyCache(db, ttl_s=ttl_s, clock=clock)
        # an engine's router shares its adapters' breakers with the fleet; a test driving
        # time through `clock` keeps them here
        breakers = (SharedBreakerRegistry(db) if services is not None and clock is time.monotonic
                    else BreakerRegistry(clock=clock))
        router = Router(db, cache, adapters, breakers, services=services,
                        sleep=sleep or asyncio.sleep, wall_clock=wall_clock)
        return cls(cache, adapters, breakers, router, RouterAdmin(db, cache, adapters),
                   DeadLetterQueue(db, router, wall_clock=wall_clock))

    async def dispatch(self, event_type: str, context: dict[str, Any], *, operator_id: str,
                       trace_id: str | None = None) -> RunResult | None:
        return await self.router.dispatch(event_type, context, operator_id=operator_id, trace_id=trace_id)

    async def breaker_states(self) -> list[dict[str, Any]]:
        await self.breakers.refresh()
        return self.breakers.snapshot()
