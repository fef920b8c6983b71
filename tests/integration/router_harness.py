"""Router test harness: a RouterService on the session database with recording adapters,
a settable monotonic clock, a settable wall clock and a sleep that only records."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, UTC
from typing import Any

from fleet_tui.domain.models import Operator, Tier
from fleet_tui.engine.events.adapters import AdapterRegistry, StepContext, builtin_adapters
from fleet_tui.engine.events.policy import Step
from fleet_tui.engine.events.service import RouterService
from fleet_tui.engine.events.step_services import StepServices
from fleet_tui.store.db import Database


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class WallClock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Recorder:
    """Adapters that log what ran, in order: 'ok' returns params.output; 'boom' raises;
    'flaky' fails params.failures times then succeeds."""

    calls: list[str] = field(default_factory=list)
    failures_left: dict[str, int] = field(default_factory=dict)
    broken: bool = True

    async def ok(self, step: Step, ctx: StepContext) -> dict[str, Any]:
        self.calls.append(step.name)
        return {**step.params.get("output", {}), "seen": sorted(ctx.results), "context": ctx.context}

    async def boom(self, step: Step, ctx: StepContext) -> dict[str, Any]:
        self.calls.append(step.name)
        if self.broken:
            raise RuntimeError(f"{step.name} is broken")
        return {"fixed": True}

    async def flaky(self, step: Step, ctx: StepContext) -> dict[str, Any]:
        self.calls.append(step.name)
        left = self.failures_left.setdefault(step.name, int(step.params.get("failures", 1)))
        if left > 0:
            self.failures_left[step.name] = left - 1
            raise RuntimeError("not yet")
        return {"done": True}


def adapters_with(recorder: Recorder) -> AdapterRegistry:
    registry = builtin_adapters()
    registry.register("test_ok", recorder.ok)
    registry.register("test_boom", recorder.boom)
    registry.register("test_flaky", recorder.flaky)
    return registry


@dataclass
class Harness:
    service: RouterService
    recorder: Recorder
    clock: Clock
    wall: WallClock
    sleeps: list[float]
    operator: Operator

    @property
    def op(self) -> str:
        return self.operator.id


def new_operator(admin: bool = False) -> Operator:
    return Operator(id=f"rt-{uuid.uuid4().hex[:8]}", tier=Tier.SOVEREIGN, is_admin=admin)


def make_harness(db: Database, *, services: StepServices | None = None, operator: Operator | None = None) -> Harness:
    recorder, clock, wall, sleeps = Recorder(), Clock(), WallClock(), []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(0)

    service = RouterService.build(db, services=services, adapters=adapters_with(recorder), clock=clock,
                                  wall_clock=wall, sleep=sleep)
    return Harness(service, recorder, clock, wall, sleeps, operator or new_operator())


def step(name: str, adapter: str = "test_ok", wave: int = 0, criticality: str = "critical",
         retries: int = 0, **params: Any) -> dict[str, Any]:
    return {"name": name, "adapter": adapter, "wave": wave, "criticality": criticality,
            "retries": retries, "params": params}
