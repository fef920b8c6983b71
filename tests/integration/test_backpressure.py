"""Backpressure on real rows: queued spawns are visible and admitted by priority then age as
capacity frees; dedup merges within the window only; the rate limit; batch files."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from fleet_tui.domain.errors import PermissionDeniedError, ValidationFailed
from fleet_tui.domain.models import SpawnRequest
from fleet_tui.store import reputation as history
from fleet_tui.engine.spawn.backpressure import Deduper, RateLimiter, SpawnQueue, enqueue_batch, load_batch
from tests.integration.router_harness import WallClock, new_operator


def req(description: str, priority: int = 50, **extra) -> SpawnRequest:
    return SpawnRequest(description=description, repo="/tmp/repo", priority=priority, **extra)


@pytest.fixture
async def queue(database) -> SpawnQueue:
    q = SpawnQueue(database, wall_clock=WallClock())
    for entry in await q.queued():  # leave nothing from other tests in line
        await q.failed(entry, "cleared by test")
    return q


async def test_queued_spawns_wait_in_priority_then_age_order(queue: SpawnQueue) -> None:
    op = new_operator()
    for name, priority in [("low", 10), ("high-old", 90), ("mid", 50), ("high-new", 90)]:
        await queue.enqueue(req(name), op, priority)
        queue._wall_clock.advance(1)
    visible = await queue.queued(op)
    assert [e.request.description for e in visible] == ["high-old", "high-new", "mid", "low"]
    assert {e.status for e in visible} == {"queued"}
    await queue.failed(visible[0], "its repository is gone")
    assert [e.request.description for e in await queue.queued(op)] == ["high-new", "mid", "low"]
    assert await queue.depth() == 3


async def test_other_operators_do_not_see_my_queue(queue: SpawnQueue) -> None:
    mine, other = new_operator(), new_operator()
    await queue.enqueue(req("secret"), mine)
    assert await queue.queued(other) == []
    assert len(await queue.queued(mine)) == 1


async def test_dedup_key_within_the_window_is_merged(queue: SpawnQueue) -> None:
    op = new_operator()
    first, merged = await queue.enqueue(req("once"), op, dedup_key="k-1")
    again, merged_again = await queue.enqueue(req("once"), op, dedup_key="k-1")
    assert not merged and merged_again and again.id == first.id
    queue._wall_clock.advance(301)
    later, merged_later = await queue.enqueue(req("once"), op, dedup_key="k-1")
    assert not merged_later and later.id != first.id
    assert len(await queue.queued(op)) == 2


async def test_event_dedup_window_per_operator(database) -> None:
    wall = WallClock()
    dedup = Deduper(database, window_s=60, wall_clock=wall)
    a, b = new_operator().id, new_operator().id
    assert (await dedup.first_time(a, "forge:push:1", "ev1")) == (True, "ev1")
    wall.advance(59)
    assert (await dedup.first_time(a, "forge:push:1", "ev2")) == (False, "ev1")
    assert (await dedup.first_time(b, "forge:push:1"))[0] is True
    wall.advance(2)
    assert (await dedup.first_time(a, "forge:push:1", "ev3")) == (True, "ev3")
    assert dedup.merged == 1


async def test_rate_limit_per_operator_with_a_sliding_window_shared_in_the_database(database) -> None:
    a, b = new_operator().id, new_operator().id
    limiter, elsewhere = RateLimiter(database, limit=2, per_s=1.5), RateLimiter(database, limit=2, per_s=1.5)
    await limiter.take(a)
    await elsewhere.take(a)  # another conductor: the same window
    await limiter.take(b)
    with pytest.raises(PermissionDeniedError, match="2 spawn requests per 1.5s"):
        await limiter.take(a)
    await asyncio.sleep(1.6)
    await elsewhere.take(a)


async def test_batch_file_is_admitted_in_priority_order(queue: SpawnQueue, tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_text('{"description": "docs", "repo": "/r", "priority": 5}\n# a comment\n\n'
                    '{"description": "urgent", "repo": "/r", "priority": 95}\n'
                    '{"description": "normal", "repo": "/r"}\n')
    op = new_operator()
    assert len(await enqueue_batch(queue, op, path)) == 3
    assert [e.request.description for e in await queue.queued(op)] == ["urgent", "normal", "docs"]


def test_bad_batch_line_is_refused_naming_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"description": "ok", "repo": "/r"}\n{"description": "x", "repo": "/r", "priority": 500}\n')
    with pytest.raises(ValidationFailed) as err:
        load_batch(path)
    assert err.value.field == "line 2: priority"
    path.write_text("not json\n")
    with pytest.raises(ValidationFailed, match="line 1"):
        load_batch(path)


async def draining_conductor(make_conductor: Any, git_repo: Path) -> tuple[Any, SpawnQueue, Any]:
    """A conductor, its queue and an operator the registry knows (a row of theirs exists)."""
    c = await make_conductor()
    op = new_operator()
    await c.registry.admit_and_insert(op, 10, description="seed operator row", repo=str(git_repo),
                                      base_branch="main", task_type="docs")
    return c, SpawnQueue(c.parts.db), op


async def test_drain_spawns_through_the_conductor_and_records_failures(make_conductor, git_repo: Path) -> None:
    c, q, op = await draining_conductor(make_conductor, git_repo)
    bad, _ = await q.enqueue(SpawnRequest(description="nowhere", repo="/no/such/repo"), op)
    [(entry, outcome)] = await q.drain(c.admit_queued, 5)
    assert entry.id == bad.id and outcome.startswith("failed: repo: no such directory")
    assert await q.depth() == 0


async def test_a_queued_request_the_budget_refuses_fails_with_the_reason(make_conductor, git_repo: Path) -> None:
    c, q, op = await draining_conductor(make_conductor, git_repo)
    await history.set_credit_budget(c.parts.db, operator_id=op.id, usd=0)
    refused, _ = await q.enqueue(SpawnRequest(description="costs money", repo=str(git_repo)), op)
    [(entry, outcome)] = await q.drain(c.admit_queued, 5)
    assert entry.id == refused.id and outcome.startswith("failed: budget refuses every option")
    assert await q.depth() == 0
