"""TaskLedger on small fakes (no PostgreSQL): what follows each write, and the lease each
write carries (the system's is fenced by the lease the caller holds; an operator's is not)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from fleet_tui.domain.models import SYSTEM, Lease, Operator, TaskPatch, TaskRecord, Tier
from fleet_tui.domain.status import TaskStatus as S
from fleet_tui.engine.kit.bus import Event, TaskChanged, TaskDeleted
from fleet_tui.engine.ledger.leases import holding
from fleet_tui.engine.ledger.task_ledger import TaskLedger
from fleet_tui.store.notifications import terminal_dedup_key
from fleet_tui.store.tasks import Admission

LEASE = Lease(owner="c-test", epoch=4)
OPERATOR = Operator(id="op", tier=Tier.SOVEREIGN)


def a_task(status: S = S.RUNNING, *, version: int = 3, **fields: Any) -> TaskRecord:
    now = datetime.now(UTC)
    return TaskRecord(id="t-1", operator_id="op", status=status, version=version, description="fix it",
                      repo="/repo", base_branch="main", created_at=now, updated_at=now, trace_id="tr-1",
                      **fields)


class FakeRegistry:
    """The registry's writers, answering as the store would; each call is kept."""

    def __init__(self, *, budget_left: bool = True) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.budget_left = budget_left

    async def transition(self, task_id: str, expected_version: int, target: S, **kw: Any) -> TaskRecord:
        self.calls.append(("transition", {"task_id": task_id, "version": expected_version, "target": target, **kw}))
        return a_task(target, version=expected_version + 1)

    async def update(self, task_id: str, expected_version: int, **kw: Any) -> TaskRecord:
        self.calls.append(("update", {"task_id": task_id, "version": expected_version, **kw}))
        return a_task(version=expected_version + 1)

    async def record_failure(self, task_id: str, **kw: Any) -> TaskRecord | None:
        self.calls.append(("record_failure", {"task_id": task_id, **kw}))
        return a_task(S.FAILED, version=9, retry_count=1) if self.budget_left else None

    async def delete(self, task_id: str, **kw: Any) -> None:
        self.calls.append(("delete", {"task_id": task_id, **kw}))

    async def admit(self, operator: Operator, **kw: Any) -> Admission:
        self.calls.append(("admit", {"operator": operator.id, **kw}))
        return Admission(outcome="queued", ref="7", live=1, fleet_live=2, task=None)


class FakeConn:
    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    async def fetchval(self, sql: str, *args: Any) -> int:
        assert sql.startswith("INSERT INTO fleet_audit")
        self.rows.append(args)
        return len(self.rows)


class FakeDb:
    def __init__(self) -> None:
        self.conn = FakeConn()
        self.transactions = 0

    @asynccontextmanager
    async def system(self) -> AsyncIterator[FakeConn]:
        self.transactions += 1
        yield self.conn


class Ledger:
    """A TaskLedger over fakes, and what its collaborators were told."""

    def __init__(self, registry: FakeRegistry | None = None, *, release_fails: bool = False) -> None:
        self.registry = registry or FakeRegistry()
        self.db = FakeDb()
        self.published: list[Event] = []
        self.released: list[str] = []
        self.notes: list[tuple[str, str, str, str | None]] = []
        self.hooked: list[tuple[str, S, str | None]] = []
        self.release_fails = release_fails
        self.ledger = TaskLedger(self.registry, self.db, publish=self.published.append,  # type: ignore[arg-type]
                                 release=self.release, notify=self.notify)
        self.ledger.on_terminal.append(lambda task, status, reason: self.hooked.append((task.id, status, reason)))

    async def release(self, task: TaskRecord) -> None:
        if self.release_fails:
            raise RuntimeError("tmux is gone")
        self.released.append(task.id)

    async def notify(self, task: TaskRecord, kind: str, summary: str, *, dedup_key: str | None = None) -> None:
        self.notes.append((task.id, kind, summary, dedup_key))


async def test_a_move_is_one_guarded_transition_then_published() -> None:
    f = Ledger()
    patch = TaskPatch(pr_url="https://example/pr/1")
    with holding(LEASE):
        moved = await f.ledger.move(a_task(S.SPAWNING), S.RUNNING, patch, actor="conductor", reason="up",
                                    notes=[("prompt_built", {"chars": 3})])
    (name, call), = f.registry.calls
    assert name == "transition" and call["target"] == S.RUNNING and call["version"] == 3
    assert call["operator"] is SYSTEM and call["lease"] == LEASE and call["patch"] is patch
    assert call["expected_status"] == S.SPAWNING and call["reason"] == "up" and call["actor"] == "conductor"
    assert call["notes"] == [("conductor", "prompt_built", {"chars": 3})]
    assert f.published == [TaskChanged(moved)]
    assert f.released == [] and f.notes == [] and f.hooked == []  # not out of running, not terminal


async def test_an_operators_move_is_theirs_and_not_fenced_by_a_lease() -> None:
    f = Ledger()
    with holding(LEASE):
        await f.ledger.move(a_task(S.READY), S.MERGED, actor="op", reason="merged", operator=OPERATOR)
    (_, call), = f.registry.calls
    assert call["operator"] is OPERATOR and call["lease"] is None


async def test_leaving_running_releases_the_runtime_and_a_terminal_move_notifies_then_hooks() -> None:
    f = Ledger()
    moved = await f.ledger.move(a_task(S.RUNNING), S.CANCELLED, actor="op", reason="stopped by operator",
                                operator=OPERATOR)
    assert f.released == ["t-1"]
    assert f.notes == [("t-1", "cancelled", f.notes[0][2], terminal_dedup_key("t-1"))]
    assert f.hooked == [("t-1", S.CANCELLED, "stopped by operator")]
    assert f.published == [TaskChanged(moved)]


async def test_a_runtime_that_cannot_release_does_not_fail_the_move() -> None:
    f = Ledger(release_fails=True)
    moved = await f.ledger.move(a_task(S.RUNNING), S.PR_CREATED, actor="monitor")
    assert moved.status == S.PR_CREATED and f.published == [TaskChanged(moved)]


async def test_a_patch_is_guarded_by_the_version_and_the_held_lease_then_published() -> None:
    f = Ledger()
    patch = TaskPatch(needs_input=True)
    with holding(LEASE):
        changed = await f.ledger.patch(a_task(), patch)
    assert f.registry.calls == [("update", {"task_id": "t-1", "version": 3, "patch": patch, "operator": None,
                                            "lease": LEASE})]
    assert f.published == [TaskChanged(changed)]


@pytest.mark.parametrize("operator", [None, OPERATOR])
async def test_a_failure_counted_keeps_the_tasks_context_fenced_unless_an_operators(
        operator: Operator | None) -> None:
    f = Ledger()
    with holding(LEASE):
        counted = await f.ledger.record_failure(a_task(S.FAILED, failure_context={"code": "timeout"}),
                                                operator=operator)
    assert counted is not None and counted.retry_count == 1
    assert f.registry.calls == [("record_failure", {"task_id": "t-1", "operator": operator,
                                                    "context": {"code": "timeout"},
                                                    "lease": None if operator else LEASE})]
    assert f.published == []  # the move that follows publishes


async def test_a_spent_budget_counts_nothing_and_an_explicit_context_wins() -> None:
    f = Ledger(FakeRegistry(budget_left=False))
    assert await f.ledger.record_failure(a_task(S.FAILED), context={"code": "x"}) is None
    assert f.registry.calls[0][1]["context"] == {"code": "x"}


async def test_a_deletion_is_the_operators_then_published() -> None:
    f = Ledger()
    await f.ledger.delete(a_task(S.CANCELLED), OPERATOR)
    assert f.registry.calls == [("delete", {"task_id": "t-1", "operator": OPERATOR})]
    assert f.published == [TaskDeleted("t-1")]


async def test_the_admission_is_written_through_the_ledger() -> None:
    f = Ledger()
    admission = await f.ledger.admit(OPERATOR, limit=5, capacity=10, key="k", may_queue=True)
    assert admission.outcome == "queued"
    assert f.registry.calls == [("admit", {"operator": "op", "limit": 5, "capacity": 10, "key": "k",
                                           "may_queue": True})]


async def test_audit_rows_are_the_conductors_in_one_transaction() -> None:
    f = Ledger()
    await f.ledger.audit_many(a_task(), [("answered", {"chars": 4}), ("permission_granted", {"rules": []})])
    await f.ledger.audit_many(a_task(), [])  # nothing to write: no transaction either
    assert f.db.transactions == 1
    assert [(row[0], row[1], row[2], row[3], row[7], row[8]) for row in f.db.conn.rows] == [
        ("t-1", "op", "conductor", "answered", {"chars": 4}, "tr-1"),
        ("t-1", "op", "conductor", "permission_granted", {"rules": []}, "tr-1")]
