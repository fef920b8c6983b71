"""The router: an event resolves to a route and its sequence; the sequence runs wave by
wave (the steps of a wave concurrently), each step through its adapter's circuit breaker
with retries; handoffs queue follow-ups up to the depth cap; a failed critical step fails
the run and dead-letters it in one statement."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, UTC
from typing import Any
from collections.abc import Awaitable, Callable

from fleet_tui.domain.errors import LeaseLostError
from fleet_tui.engine.kit.breaker import BreakerRegistry
from fleet_tui.engine.events.adapters import AdapterRegistry, StepContext
from fleet_tui.engine.events.handoffs import conditions_hold, map_context
from fleet_tui.engine.events.policy import (
    MAX_CHAIN_DEPTH,
    Handoff,
    Policy,
    Sequence,
    Step,
    dead_letter_delay_s,
    step_retry_delay_s,
)
from fleet_tui.engine.events.resolve import PolicyCache
from fleet_tui.engine.events.step_services import StepServices
from fleet_tui.engine.ledger.tracing import span, trace
from fleet_tui.store import dead_letters as letter_store
from fleet_tui.store import routes as route_store
from fleet_tui.store.db import Database

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[Any]]
WallClock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


@dataclass
class StepOutcome:
    name: str
    adapter: str
    criticality: str
    status: str  # succeeded | failed (critical) | skipped (best-effort failed) | not_run | lease_lost
    attempts: int = 0
    output: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"adapter": self.adapter, "criticality": self.criticality, "status": self.status,
                "attempts": self.attempts, "output": self.output, "error": self.error}


@dataclass
class RunResult:
    sequence: str
    event_type: str
    depth: int
    status: str  # succeeded | failed | stopped
    run_id: int | None = None
    steps: dict[str, StepOutcome] = field(default_factory=dict)
    error: str | None = None
    failed_step: str | None = None
    dead_letter_id: int | None = None
    follow_ups: list[RunResult] = field(default_factory=list)
    lease_lost: bool = False  # another conductor holds the task now: it decides, no dead letter

    def chain(self) -> list[RunResult]:
        """This run and every follow-up under it, depth first."""
        return [self, *[r for child in self.follow_ups for r in child.chain()]]


class Router:
    def __init__(self, db: Database, cache: PolicyCache, adapters: AdapterRegistry,
                 breakers: BreakerRegistry, *, services: StepServices | None = None,
                 sleep: Sleep = asyncio.sleep, wall_clock: WallClock = utc_now,
                 max_depth: int = MAX_CHAIN_DEPTH) -> None:
        self.db = db
        self.cache = cache
        self.adapters = adapters
        self.breakers = breakers
        self.services = services
        self._sleep = sleep
        self._wall_clock = wall_clock
        self.max_depth = max_depth
        self.dispatched = 0
        self.dead_lettered = 0

    async def dispatch(self, event_type: str, context: dict[str, Any], *, operator_id: str,
                       trace_id: str | None = None) -> RunResult | None:
        """Run the sequence the operator's route for event_type names (None: no route, the
        route is disabled or its match does not hold on the context)."""
        policy = await self.cache.policy(operator_id)
        route = policy.route_for(event_type)
        if route is None or not route.matches(context):
            return None
        self.dispatched += 1
        return await self.run(route.sequence_name, context, operator_id=operator_id,
                              event_type=event_type, trace_id=trace_id, policy=policy)

    async def run(self, sequence_name: str, context: dict[str, Any], *, operator_id: str, event_type: str,
                  depth: int = 1, parent_run_id: int | None = None, trace_id: str | None = None,
                  policy: Policy | None = None, dead_letter: tuple[int, int] | None = None) -> RunResult:
        """Run one sequence (and its follow-ups). dead_letter=(id, attempts) when this run
        retries that letter: success resolves it, failure counts the attempt on it."""
        context = _jsonable(context)
        with trace(trace_id or context.get("trace_id")) as tid, span(f"route:{sequence_name}"):
            result = RunResult(sequence_name, event_type, depth, "running")
            if depth > self.max_depth:
                return await self._stop_at_cap(result, operator_id, context, parent_run_id, tid)
            policy = policy or await self.cache.policy(operator_id)
            async with self.db.system() as conn:
                result.run_id = await route_store.start_run(
                    conn, operator_id=operator_id, event_type=event_type, sequence_name=sequence_name,
                    depth=depth, parent_run_id=parent_run_id, context=context, trace_id=tid)
            sequence = policy.sequence(sequence_name)
            if sequence is None:
                result.error = f"unknown sequence {sequence_name!r}"
                return await self._fail(result, None, dead_letter)
            try:
                follow_ups = await self._run_waves(sequence, result, StepContext(
                    operator_id=operator_id, event_type=event_type, sequence=sequence, context=context,
                    services=self.services, trace_id=tid), policy)
            except asyncio.CancelledError:  # the conductor is stopping: say so, then stop
                await asyncio.shield(self._stop(result, "cancelled: the conductor stopped"))
                raise
            if result.lease_lost:
                return await self._stop(result, f"step {result.failed_step}: the task's lease moved "
                                                f"to another conductor")
            if result.failed_step is not None:
                return await self._fail(result, result.failed_step, dead_letter)
            result.status = "succeeded"
            async with self.db.system() as conn:
                await route_store.finish_run(conn, result.run_id, status="succeeded",
                                             results=self._results(result))
                if dead_letter is not None:
                    await letter_store.resolve(conn, dead_letter[0], result.run_id)
            for handoff, child_context in follow_ups:
                result.follow_ups.append(await self.run(
                    handoff.target_sequence, {"trace_id": tid, **child_context}, operator_id=operator_id,
                    event_type=f"handoff:{handoff.name}", depth=depth + 1, parent_run_id=result.run_id,
                    trace_id=tid, policy=policy))
            return result

    # --- waves and steps ---------------------------------------------------------------------

    async def _run_waves(self, sequence: Sequence, result: RunResult, ctx: StepContext,
                         policy: Policy) -> list[tuple[Handoff, dict[str, Any]]]:
        follow_ups: list[tuple[Handoff, dict[str, Any]]] = []
        for wave in sequence.waves():
            if result.failed_step is not None:
                for step in wave:
                    result.steps[step.name] = StepOutcome(step.name, step.adapter, step.criticality, "not_run")
                continue
            outcomes = await asyncio.gather(*(self._run_step(step, ctx) for step in wave))
            for step, outcome in zip(wave, outcomes):
                result.steps[step.name] = outcome
                if outcome.status == "succeeded":
                    ctx.results[step.name] = outcome.output
                    for handoff in policy.handoffs_from(sequence.name, step.name):
                        if conditions_hold(handoff.conditions, outcome.output):
                            follow_ups.append((handoff, map_context(handoff, ctx.context, outcome.output)))
                elif outcome.status == "lease_lost":
                    result.lease_lost = True
                    result.failed_step = result.failed_step or step.name
                elif outcome.status == "failed" and result.failed_step is None:
                    result.failed_step = step.name
                    result.error = f"critical step {step.name} failed: {outcome.error}"
        return follow_ups

    async def _run_step(self, step: Step, ctx: StepContext) -> StepOutcome:
        failed = "failed" if step.criticality == "critical" else "skipped"
        adapter = self.adapters.get(step.adapter)
        if adapter is None:
            return StepOutcome(step.name, step.adapter, step.criticality, failed,
                               error=f"unknown adapter {step.adapter!r}")
        breaker = f"adapter:{step.adapter}"
        outcome = StepOutcome(step.name, step.adapter, step.criticality, failed)
        for attempt in range(step.retries + 1):
            if attempt:
                await self._sleep(step_retry_delay_s(attempt))
            if not await self.breakers.allow(breaker):
                outcome.error = f"circuit breaker adapter:{step.adapter} is open"
                break
            outcome.attempts += 1
            try:
                with span(f"step:{step.name}"):
                    output = await adapter(step, ctx)
            except asyncio.CancelledError:
                raise
            except LeaseLostError as exc:  # not the adapter's fault, and retrying cannot help
                outcome.status, outcome.error = "lease_lost", str(exc)
                return outcome
            except Exception as exc:
                await self.breakers.record(breaker, False)
                outcome.error = f"{type(exc).__name__}: {exc}"
                log.warning("step %s (%s) attempt %d failed: %s", step.name, step.adapter,
                            outcome.attempts, outcome.error)
                continue
            await self.breakers.record(breaker, True)
            outcome.status, outcome.output, outcome.error = "succeeded", _jsonable(dict(output or {})), None
            return outcome
        return outcome

    # --- endings -----------------------------------------------------------------------------

    def _results(self, result: RunResult) -> dict[str, Any]:
        return {name: outcome.to_dict() for name, outcome in result.steps.items()}

    async def _fail(self, result: RunResult, step_name: str | None,
                    dead_letter: tuple[int, int] | None) -> RunResult:
        result.status = "failed"
        attempts = 0 if dead_letter is None else dead_letter[1] + 1
        due = self._wall_clock() + timedelta(seconds=dead_letter_delay_s(attempts))
        assert result.run_id is not None
        async with self.db.system() as conn:
            result.dead_letter_id = await letter_store.fail_run(
                conn, result.run_id, results=self._results(result), error=result.error or "failed",
                step_name=step_name, next_attempt_at=due,
                dead_letter_id=None if dead_letter is None else dead_letter[0])
        self.dead_lettered += 1
        log.error("route run %s (%s) failed and was dead-lettered as %s: %s", result.run_id,
                  result.sequence, result.dead_letter_id, result.error)
        return result

    async def _stop(self, result: RunResult, error: str) -> RunResult:
        result.status, result.error = "stopped", error
        if result.run_id is not None:
            async with self.db.system() as conn:
                await route_store.finish_run(conn, result.run_id, status="stopped",
                                             results=self._results(result), error=error)
        log.info("route run %s (%s) stopped: %s", result.run_id, result.sequence, error)
        return result

    async def _stop_at_cap(self, result: RunResult, operator_id: str, context: dict[str, Any],
                           parent_run_id: int | None, trace_id: str) -> RunResult:
        result.status = "stopped"
        result.error = f"handoff chain stopped at the depth cap of {self.max_depth}"
        async with self.db.system() as conn:
            result.run_id = await route_store.start_run(
                conn, operator_id=operator_id, event_type=result.event_type, sequence_name=result.sequence,
                depth=result.depth, parent_run_id=parent_run_id, context=context, trace_id=trace_id,
                status="stopped", error=result.error)
        log.warning("%s (follow-up %s not run)", result.error, result.sequence)
        return result
