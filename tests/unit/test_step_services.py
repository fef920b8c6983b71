"""The event router's steps and its dispatch on small fakes of StepServices (the steps' narrow
collaborators, engine/events/step_services.py): no conductor, no database. Each test reads
what a step asked of its services."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from collections.abc import AsyncIterator

import pytest

from fleet_tui.config import RetrySettings
from fleet_tui.domain.agent_failures import TAMPERED
from fleet_tui.domain.models import TaskPatch, TaskRecord
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.attempts.retry import RETRY_AT_KEY
from fleet_tui.engine.events.adapters import StepContext, StepFailed, builtin_adapters, notify, transition_task
from fleet_tui.engine.events.policy import Policy, Route, Sequence, Step
from fleet_tui.engine.events.runner import Router
from fleet_tui.engine.events.step_services import StepServices
from fleet_tui.engine.kit.breaker import BreakerRegistry
from fleet_tui.engine.kit.bus import Event, Notice
from fleet_tui.store.notifications import terminal_dedup_key

S = TaskStatus


def a_task(status: TaskStatus = S.FAILED, *, task_id: str = "t-1", **fields: Any) -> TaskRecord:
    now = datetime.now(UTC)
    return TaskRecord(id=task_id, operator_id="op", status=status, version=3, description="fix it",
                      repo="/repo", base_branch="main", branch=f"fleet/{task_id}", created_at=now,
                      updated_at=now, spawned_at=now, **fields)


class Engine:
    """The fakes behind StepServices: one task, and every write recorded."""

    def __init__(self, task: TaskRecord, *, budget_left: bool = True) -> None:
        self.task = task
        self.budget_left = budget_left
        self.moves: list[tuple[TaskStatus, TaskPatch | None, str, str | None]] = []
        self.failures: list[dict[str, Any]] = []
        self.notes: list[tuple[str, str, str | None]] = []
        self.operator_notes: list[tuple[str, str, str]] = []
        self.published: list[Event] = []

    async def get_task(self, task_id: str) -> TaskRecord:
        assert task_id == self.task.id
        return self.task

    async def move(self, task: TaskRecord, target: TaskStatus, patch: TaskPatch | None = None, *,
                   actor: str, reason: str | None = None) -> TaskRecord:
        self.moves.append((target, patch, actor, reason))
        return task.model_copy(update={"status": target, "version": task.version + 1})

    async def record_failure(self, task: TaskRecord, *, context: dict[str, Any]) -> TaskRecord | None:
        self.failures.append(context)
        if not self.budget_left:
            return None
        return task.model_copy(update={"retry_count": task.retry_count + 1, "version": task.version + 1})

    async def notify(self, task: TaskRecord, kind: str, summary: str, *, dedup_key: str | None = None) -> None:
        self.notes.append((kind, summary, dedup_key))

    async def notify_operator(self, operator_id: str, kind: str, summary: str) -> None:
        self.operator_notes.append((operator_id, kind, summary))

    async def count_live(self) -> int:
        return 1

    def services(self) -> StepServices:
        def unused(*_: Any, **__: Any) -> Any:
            raise AssertionError("not used by this step")

        return StepServices(
            db=unused, get_task=self.get_task, move=self.move, patch=unused, record_failure=self.record_failure,
            notify=self.notify, notify_operator=self.notify_operator, publish=self.published.append,
            spawn=unused, reviews=unused, review_host=unused, place=unused, forge=unused, worktrees=unused,
            retry=RetrySettings(base_s=1, cap_s=2), headroom=Headroom(), count_live=self.count_live)


class Headroom:
    fleet_capacity = 10

    def limit_for(self, tier: Any) -> int:
        return 10


def context_for(step: Step, engine: Engine | None, **context: Any) -> StepContext:
    return StepContext(operator_id="op", event_type="task.failed", sequence=Sequence(name="seq", steps=[step]),
                       context=context, services=engine.services() if engine else None)


# --- the move step ----------------------------------------------------------------------


async def test_a_transition_step_moves_the_task_as_the_router() -> None:
    engine = Engine(a_task(S.REJECTED))
    step = Step(name="give_up", adapter="transition_task", params={"to": "abandoned"})
    out = await transition_task(step, context_for(step, engine, task_id="t-1"))
    assert out == {"status": "abandoned", "changed": True}
    assert engine.moves == [(S.ABANDONED, None, "router", "route step give_up")]


async def test_a_transition_step_to_where_the_task_is_moves_nothing() -> None:
    engine = Engine(a_task(S.ABANDONED))
    step = Step(name="give_up", adapter="transition_task", params={"to": "abandoned"})
    assert await transition_task(step, context_for(step, engine, task_id="t-1")) == {
        "status": "abandoned", "changed": False}
    assert engine.moves == []


async def test_a_step_that_needs_the_engine_fails_without_its_services() -> None:
    step = Step(name="give_up", adapter="transition_task", params={"to": "abandoned"})
    with pytest.raises(StepFailed, match="needs the engine's services"):
        await transition_task(step, context_for(step, None, task_id="t-1"))


# --- the retry step ---------------------------------------------------------------------


async def test_the_retry_step_counts_the_failure_and_schedules_the_next_attempt() -> None:
    engine = Engine(a_task(S.FAILED, failure_reason="agent_exit", failure_context={"exit": 1}, max_retries=3))
    step = Step(name="retry", adapter="transition_task", params={"to": "retry_or_abandon"})
    out = await transition_task(step, context_for(step, engine, task_id="t-1"))
    assert out["decision"] == "retry" and out["status"] == "retrying"
    assert engine.failures == [{"exit": 1}]
    [(target, patch, actor, _)] = engine.moves
    assert (target, actor) == (S.RETRYING, "router")
    assert patch is not None and RETRY_AT_KEY in (patch.metadata or {})
    assert [(e.kind, e.task_id) for e in engine.published if isinstance(e, Notice)] == [("retry_scheduled", "t-1")]


async def test_the_retry_step_abandons_when_the_ledger_says_the_budget_is_spent() -> None:
    engine = Engine(a_task(S.FAILED, failure_reason="agent_exit", max_retries=3), budget_left=False)
    step = Step(name="retry", adapter="transition_task", params={"to": "retry_or_abandon"})
    out = await transition_task(step, context_for(step, engine, task_id="t-1"))
    assert out == {"decision": "abandon", "status": "abandoned", "reason": "retry budget spent"}
    assert [m[0] for m in engine.moves] == [S.ABANDONED] and engine.published == []


async def test_the_retry_step_never_retries_a_tampered_task() -> None:
    engine = Engine(a_task(S.FAILED, failure_reason=TAMPERED, max_retries=3))
    step = Step(name="retry", adapter="transition_task", params={"to": "retry_or_abandon"})
    out = await transition_task(step, context_for(step, engine, task_id="t-1"))
    assert out["decision"] == "abandon" and engine.failures == []
    assert [m[0] for m in engine.moves] == [S.ABANDONED]


# --- the notify step --------------------------------------------------------------------


async def test_a_notify_step_on_a_terminal_task_records_its_kind_once_per_task() -> None:
    engine = Engine(a_task(S.ABANDONED))
    step = Step(name="tell", adapter="notify", params={"kind": "abandoned"})
    out = await notify(step, context_for(step, engine, task_id="t-1", summary="gave up"))
    assert out == {"kind": "abandoned", "summary": "gave up"}
    assert engine.notes == [("abandoned", "gave up", terminal_dedup_key("t-1"))]
    assert engine.operator_notes == []


async def test_a_notify_step_about_no_task_tells_the_operator() -> None:
    engine = Engine(a_task())
    step = Step(name="tell", adapter="notify", params={"kind": "page", "summary": "look"})
    await notify(step, context_for(step, engine))
    assert engine.operator_notes == [("op", "page", "look")] and engine.notes == []


# --- the router's dispatch --------------------------------------------------------------


class Runs:
    """The route-run rows the router writes, kept in memory: the database's part."""

    def __init__(self) -> None:
        self.started: list[tuple[Any, ...]] = []
        self.finished: list[tuple[Any, ...]] = []

    async def fetchval(self, sql: str, *args: Any) -> int:
        assert sql.startswith("INSERT INTO fleet_route_runs")
        self.started.append(args)
        return len(self.started)

    async def execute(self, sql: str, *args: Any) -> None:
        assert sql.startswith("UPDATE fleet_route_runs")
        self.finished.append(args)

    @asynccontextmanager
    async def system(self, *, kind: str = "write") -> AsyncIterator[Runs]:
        yield self


class OnePolicy:
    def __init__(self, policy: Policy) -> None:
        self._policy = policy

    async def policy(self, operator_id: str) -> Policy:
        return self._policy


TELL = Sequence(name="tell_me", steps=[Step(name="tell", adapter="notify", retries=0,
                                            params={"kind": "failure_seen", "summary": "look at it"})])
ROUTED = Policy(routes=[Route(event_type="task.failed", sequence_name="tell_me")], sequences=[TELL])


def a_router(runs: Runs, services: StepServices | None) -> Router:
    async def no_sleep(seconds: float) -> None:
        raise AssertionError("no retry expected here")

    return Router(runs, OnePolicy(ROUTED), builtin_adapters(), BreakerRegistry(),  # type: ignore[arg-type]
                  services=services, sleep=no_sleep)


async def test_the_router_runs_the_routed_sequence_with_its_services() -> None:
    engine, runs = Engine(a_task(S.FAILED)), Runs()
    router = a_router(runs, engine.services())
    result = await router.dispatch("task.failed", {"task_id": "t-1"}, operator_id="op")
    assert result is not None and result.status == "succeeded", result
    assert engine.notes == [("failure_seen", "look at it", None)]
    assert [args[1] for args in runs.finished] == ["succeeded"] and router.dispatched == 1


async def test_the_router_runs_nothing_for_an_event_without_a_route() -> None:
    engine, runs = Engine(a_task(S.FAILED)), Runs()
    router = a_router(runs, engine.services())
    assert await router.dispatch("task.merged", {"task_id": "t-1"}, operator_id="op") is None
    assert runs.started == [] and engine.notes == [] and router.dispatched == 0
