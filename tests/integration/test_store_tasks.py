"""The task registry on real PostgreSQL: lifecycle, optimistic concurrency, retry budget."""

from __future__ import annotations

import asyncio
import uuid
from collections import deque

import pytest

from fleet_tui.domain.errors import (
    InvalidTransitionError,
    NotFoundError,
    SpawnDeniedError,
    StaleVersionError,
    TaskLiveError,
    ValidationFailed,
)
from fleet_tui.domain.models import Operator, TaskPatch, TaskQuery, Tier
from fleet_tui.domain.status import TERMINAL_STATUSES, TRANSITIONS, TaskStatus
from fleet_tui.store import audit
from fleet_tui.store.tasks import TaskRegistry

S = TaskStatus
VALID = sorted((src, dst) for src, targets in TRANSITIONS.items() for dst in targets)
FROM_TERMINAL = sorted((src, dst) for src in TERMINAL_STATUSES for dst in S)
INVALID_LIVE = [
    (S.PROPOSED, S.RUNNING), (S.PROPOSED, S.MERGED), (S.SPAWNING, S.PR_CREATED),
    (S.RUNNING, S.READY), (S.RUNNING, S.RETRYING), (S.PR_CREATED, S.MERGED),
    (S.REVIEWING, S.FAILED), (S.READY, S.RUNNING), (S.FAILED, S.RUNNING),
    (S.REJECTED, S.SPAWNING), (S.RETRYING, S.RUNNING), (S.PROPOSED, S.PROPOSED),
]


def op(name: str | None = None, tier: Tier = Tier.SOVEREIGN, admin: bool = False) -> Operator:
    return Operator(id=name or f"op-{uuid.uuid4().hex[:8]}", tier=tier, is_admin=admin)


def path_to(target: TaskStatus) -> list[TaskStatus]:
    """Shortest chain of statuses from proposed to target (breadth-first over TRANSITIONS)."""
    previous: dict[TaskStatus, TaskStatus | None] = {S.PROPOSED: None}
    queue = deque([S.PROPOSED])
    while queue:
        here = queue.popleft()
        for nxt in sorted(TRANSITIONS[here]):
            if nxt not in previous:
                previous[nxt] = here
                queue.append(nxt)
    chain: list[TaskStatus] = []
    node: TaskStatus | None = target
    while node is not None and node != S.PROPOSED:
        chain.append(node)
        node = previous[node]
    return list(reversed(chain))


async def new_task(registry: TaskRegistry, who: Operator, **kwargs):
    fields = dict(description="fix the flaky login test", repo="/srv/repo", base_branch="main",
                  task_type="bug_fix")
    fields.update(kwargs)
    return await registry.create(who, **fields)


async def task_at(registry: TaskRegistry, who: Operator, status: TaskStatus, **kwargs):
    task = await new_task(registry, who, **kwargs)
    for step in path_to(status):
        task = await registry.transition(task.id, task.version, step, operator=who)
    assert task.status == status
    return task


async def test_create_starts_proposed_at_version_zero(registry: TaskRegistry) -> None:
    who = op()
    task = await new_task(registry, who, priority=70, agent="demo")
    assert (task.status, task.version, task.retry_count, task.max_retries) == (S.PROPOSED, 0, 0, 3)
    assert task.operator_id == who.id and task.priority == 70 and task.metadata == {}
    assert await registry.get(task.id, operator=who) == task


@pytest.mark.parametrize(("src", "dst"), VALID, ids=[f"{a}->{b}" for a, b in VALID])
async def test_every_valid_transition(registry: TaskRegistry, src: TaskStatus, dst: TaskStatus) -> None:
    who = op()
    task = await task_at(registry, who, src)
    moved = await registry.transition(task.id, task.version, dst, operator=who, reason="test")
    assert moved.status == dst and moved.version == task.version + 1
    assert (moved.completed_at is not None) == (dst in TERMINAL_STATUSES)
    trail = await audit.list_for_task(registry.db, task.id, operator=who)
    assert (trail[-1].from_status, trail[-1].to_status, trail[-1].version) == (src, dst, moved.version)


@pytest.mark.parametrize(("src", "dst"), FROM_TERMINAL + INVALID_LIVE,
                         ids=[f"{a}->{b}" for a, b in FROM_TERMINAL + INVALID_LIVE])
async def test_invalid_transition_raises_and_changes_nothing(
        registry: TaskRegistry, src: TaskStatus, dst: TaskStatus) -> None:
    who = op()
    task = await task_at(registry, who, src)
    with pytest.raises(InvalidTransitionError) as caught:
        await registry.transition(task.id, task.version, dst, operator=who)
    assert caught.value.current == src and caught.value.target == dst
    assert await registry.get(task.id, operator=who) == task


async def test_transition_writes_metadata_and_merges_metadata(registry: TaskRegistry) -> None:
    who = op()
    task = await new_task(registry, who)
    task = await registry.transition(task.id, 0, S.SPAWNING, operator=who,
                                     patch=TaskPatch(worktree_path="/wt/a", metadata={"a": 1}))
    task = await registry.transition(
        task.id, 1, S.RUNNING, operator=who,
        patch=TaskPatch(tmux_session=f"fleet-{task.id}", metadata={"b": 2}, needs_input=True))
    task = await registry.transition(
        task.id, 2, S.PR_CREATED, operator=who,
        patch=TaskPatch(pr_number=7, pr_url="http://forge/7", ci_status="passing",
                        review_verdicts=[{"reviewer": "security", "verdict": "approve"}]))
    again = await registry.get(task.id, operator=who)
    assert again.worktree_path == "/wt/a" and again.tmux_session == f"fleet-{task.id}"
    assert again.metadata == {"a": 1, "b": 2} and again.needs_input is True
    assert (again.pr_number, again.ci_status, again.version) == (7, "passing", 3)
    assert again.review_verdicts == [{"reviewer": "security", "verdict": "approve"}]
    assert again.updated_at > again.created_at


async def test_bad_patch_value_is_a_validation_error_naming_the_field(registry: TaskRegistry) -> None:
    who = op()
    task = await task_at(registry, who, S.RUNNING)
    with pytest.raises(ValidationFailed) as caught:
        await registry.transition(task.id, task.version, S.PR_CREATED, operator=who,
                                  patch=TaskPatch(pr_number=-3))
    assert caught.value.field == "pr_number"
    assert (await registry.get(task.id, operator=who)).status == S.RUNNING


async def test_stale_version_raises(registry: TaskRegistry) -> None:
    who = op()
    task = await new_task(registry, who)
    await registry.transition(task.id, 0, S.SPAWNING, operator=who)
    with pytest.raises(StaleVersionError):
        await registry.transition(task.id, 0, S.CANCELLED, operator=who)
    assert (await registry.get(task.id, operator=who)).status == S.SPAWNING


async def test_missing_task_is_not_found(registry: TaskRegistry) -> None:
    with pytest.raises(NotFoundError):
        await registry.transition("nosuch000", 0, S.SPAWNING, operator=op(admin=True))
    with pytest.raises(NotFoundError):
        await registry.get("nosuch000", operator=op(admin=True))


async def test_two_concurrent_transitions_exactly_one_wins(registry: TaskRegistry) -> None:
    who = op()
    for _ in range(5):
        task = await task_at(registry, who, S.RUNNING)
        results = await asyncio.gather(
            registry.transition(task.id, task.version, S.PR_CREATED, operator=who),
            registry.transition(task.id, task.version, S.FAILED, operator=who),
            return_exceptions=True,
        )
        winners = [r for r in results if not isinstance(r, BaseException)]
        losers = [r for r in results if isinstance(r, BaseException)]
        assert len(winners) == 1 and len(losers) == 1
        assert isinstance(losers[0], StaleVersionError)
        final = await registry.get(task.id, operator=who)
        assert final.version == task.version + 1 and final.status == winners[0].status


async def test_record_failure_never_exceeds_max_retries_under_20_concurrent_calls(
        registry: TaskRegistry) -> None:
    who = op()
    task = await new_task(registry, who, max_retries=3)
    results = await asyncio.gather(*(
        registry.record_failure(task.id, operator=who, context={"attempt": i}) for i in range(20)))
    counted = [r for r in results if r is not None]
    assert len(counted) == 3 and results.count(None) == 17
    assert sorted(r.retry_count for r in counted) == [1, 2, 3]
    final = await registry.get(task.id, operator=who)
    assert final.retry_count == 3 and final.failure_context is not None
    assert await registry.record_failure(task.id, operator=who, context={}) is None


async def test_delete_refuses_live_and_removes_terminal(registry: TaskRegistry) -> None:
    who = op()
    live = await task_at(registry, who, S.RUNNING)
    with pytest.raises(TaskLiveError, match="running"):
        await registry.delete(live.id, operator=who)
    assert (await registry.get(live.id, operator=who)).status == S.RUNNING
    done = await task_at(registry, who, S.CANCELLED)
    await registry.delete(done.id, operator=who)
    with pytest.raises(NotFoundError):
        await registry.get(done.id, operator=who)
    trail = await audit.list_for_task(registry.db, done.id, operator=who)
    assert [e.action for e in trail][-1] == "deleted"  # history outlives the task


async def test_count_active_counts_only_non_terminal(registry: TaskRegistry) -> None:
    who = op()
    for status in (S.PROPOSED, S.RUNNING, S.FAILED, S.MERGED, S.CANCELLED, S.ABANDONED):
        await task_at(registry, who, status)
    assert await registry.count_active(who.id) == 3
    live = await registry.list_live(operator=who)
    assert {t.status for t in live} == {S.PROPOSED, S.RUNNING, S.FAILED}
    assert await registry.count_all_active() >= 3


async def test_query_filters(registry: TaskRegistry) -> None:
    who = op()
    a = await task_at(registry, who, S.RUNNING, agent="claude")
    b = await new_task(registry, who, agent="aider", task_type="docs")
    assert {t.id for t in await registry.query(TaskQuery(operator_id=who.id), operator=who)} == {a.id, b.id}
    assert [t.id for t in await registry.query(TaskQuery(statuses=[S.RUNNING]), operator=who)] == [a.id]
    assert [t.id for t in await registry.query(TaskQuery(agent="aider"), operator=who)] == [b.id]
    assert [t.id for t in await registry.query(TaskQuery(task_type="docs"), operator=who)] == [b.id]
    assert len(await registry.query(TaskQuery(limit=1), operator=who)) == 1
    assert await registry.query(TaskQuery(since=b.created_at.replace(year=2999)), operator=who) == []


async def test_transition_writes_audit_and_outbox_in_the_same_transaction(registry: TaskRegistry) -> None:
    who = op()
    task = await new_task(registry, who)
    with pytest.raises(RuntimeError):
        async with registry.db.tenant(who) as conn:
            await registry.transition(task.id, 0, S.SPAWNING, operator=who, conn=conn)
            raise RuntimeError("roll back")
    async with registry.db.tenant(who) as conn:
        events = await conn.fetch("SELECT event_type, payload FROM fleet_outbox WHERE task_id = $1 ORDER BY id",
                                  task.id)
        audits = await conn.fetchval("SELECT count(*) FROM fleet_audit WHERE task_id = $1", task.id)
    assert [e["event_type"] for e in events] == ["task.proposed"] and audits == 1
    moved = await registry.transition(task.id, 0, S.SPAWNING, operator=who)
    async with registry.db.tenant(who) as conn:
        last = await conn.fetchrow("SELECT event_type, payload, dedup_key FROM fleet_outbox"
                                   " WHERE task_id = $1 ORDER BY id DESC LIMIT 1", task.id)
    assert last["event_type"] == "task.spawning" and last["dedup_key"] == f"task:{task.id}:v1"
    assert last["payload"]["version"] == moved.version == 1 and last["payload"]["operator"] == who.id


async def test_idempotency_key_returns_existing_task(registry: TaskRegistry) -> None:
    who = op()
    first = await new_task(registry, who, idempotency_key="k-1")
    again = await new_task(registry, who, idempotency_key="k-1", description="other words")
    assert again.id == first.id and again.description == first.description
    other = await new_task(registry, op(), idempotency_key="k-1")  # unique per operator only
    assert other.id != first.id


async def test_admit_and_insert_enforces_the_tier_limit(registry: TaskRegistry) -> None:
    builder = op(tier=Tier.BUILDER)
    spec = dict(description="add a --json flag", repo="/srv/repo", base_branch="main", task_type="feature")
    task, created = await registry.admit_and_insert(builder, 1, idempotency_key="spawn-1", **spec)
    assert created and task.status == S.PROPOSED
    again, created_again = await registry.admit_and_insert(builder, 1, idempotency_key="spawn-1", **spec)
    assert again.id == task.id and not created_again
    with pytest.raises(SpawnDeniedError) as denied:
        await registry.admit_and_insert(builder, 1, **spec)
    assert str(denied.value) == f"builder operator {builder.id} has 1 live task; the builder limit is 1"
    assert await registry.count_active(builder.id) == 1


async def test_admit_and_insert_under_concurrency_never_exceeds_the_limit(registry: TaskRegistry) -> None:
    architect = op(tier=Tier.ARCHITECT)
    spec = dict(description="refactor", repo="/srv/repo", base_branch="main", task_type="refactor")
    results = await asyncio.gather(*(registry.admit_and_insert(architect, 3, **spec) for _ in range(8)),
                                   return_exceptions=True)
    assert sum(1 for r in results if isinstance(r, tuple)) == 3
    assert all(isinstance(r, SpawnDeniedError) for r in results if not isinstance(r, tuple))
    assert await registry.count_active(architect.id) == 3


@pytest.mark.parametrize(("field", "kwargs"), [
    ("description", {"description": "  "}),
    ("priority", {"priority": 101}),
    ("max_retries", {"max_retries": -1}),
    ("task_type", {"task_type": "poetry"}),
    ("runtime", {"runtime": "vm"}),
])
async def test_create_rejects_bad_input_naming_the_field(registry: TaskRegistry, field: str, kwargs) -> None:
    who = op()
    with pytest.raises(ValidationFailed) as caught:
        await new_task(registry, who, **kwargs)
    assert caught.value.field == field
    assert await registry.count_active(who.id) == 0


async def test_update_changes_metadata_under_the_version_guard(registry: TaskRegistry) -> None:
    who = op()
    task = await task_at(registry, who, S.RUNNING)
    updated = await registry.update(task.id, task.version, operator=who,
                                    patch=TaskPatch(needs_input=True, metadata={"note": "waiting"}))
    assert (updated.status, updated.version, updated.needs_input) == (S.RUNNING, task.version + 1, True)
    assert updated.metadata == {"note": "waiting"}
    with pytest.raises(StaleVersionError):
        await registry.update(task.id, task.version, operator=who, patch=TaskPatch(exit_code=1))
    with pytest.raises(NotFoundError):
        await registry.update("nosuch000", 0, operator=who, patch=TaskPatch(exit_code=1))
    trail = await audit.list_for_task(registry.db, task.id, operator=who)
    assert trail[-1].action == "update" and trail[-1].version == updated.version


async def test_a_move_from_the_status_read_skips_the_read_and_keeps_every_error(registry: TaskRegistry) -> None:
    """expected_status (what the caller read with the version): the guarded UPDATE alone
    decides, a round trip less on every move; the errors are those of a move without it."""
    from fleet_tui.domain.errors import LeaseLostError
    from fleet_tui.domain.models import Lease

    who = op()
    task = await new_task(registry, who)
    statements: list[str] = []
    async with registry.db.tenant(who) as conn:
        conn.add_query_logger(lambda record: statements.append(record.query))
        moved = await registry.transition(task.id, 0, S.SPAWNING, operator=who, conn=conn,
                                          expected_status=S.PROPOSED,
                                          notes=[("conductor", "first", {"n": 1}), ("conductor", "second", {})])
    assert moved.status == S.SPAWNING and moved.version == 1
    assert not [q for q in statements if q.lstrip().upper().startswith("SELECT STATUS")]  # no read first
    rows = await audit.list_for_task(registry.db, task.id, operator=who)
    assert [(r.action, r.detail) for r in rows][-3:] == [("first", {"n": 1}), ("second", {}),
                                                       ("transition", {"fields": []})]
    with pytest.raises(StaleVersionError):  # the same status and version read before the move
        await registry.transition(task.id, 0, S.CANCELLED, operator=who, expected_status=S.PROPOSED)
    with pytest.raises(StaleVersionError):  # not allowed from the stale status: read, then as before
        await registry.transition(task.id, 0, S.RUNNING, operator=who, expected_status=S.PROPOSED)
    with pytest.raises(InvalidTransitionError):
        await registry.transition(task.id, 1, S.MERGED, operator=who, expected_status=S.SPAWNING)
    with pytest.raises(NotFoundError):
        await registry.transition("nosuch000", 0, S.SPAWNING, operator=op(admin=True), expected_status=S.PROPOSED)
    with pytest.raises(LeaseLostError):  # no lease held: the fence refuses
        await registry.transition(task.id, 1, S.RUNNING, operator=who, expected_status=S.SPAWNING,
                                  lease=Lease(owner="someone-else", epoch=1))
    assert (await registry.get(task.id, operator=who)).status == S.SPAWNING
    assert (await registry.transition(task.id, 1, S.RUNNING, operator=who, expected_status=S.SPAWNING)).version == 2
