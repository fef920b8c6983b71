"""The monitor drives reviews and retries through the event router's routes (policies as
data): a running conductor picks up an operator's override once its cache expires, a
route without a retry leaves the failed task alone, and a slow review never holds the
monitor's cycle."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from fleet_tui.config import ReviewerSpec
from fleet_tui.domain.models import SpawnRequest
from fleet_tui.domain.status import TaskStatus
from fleet_tui.domain.models import SYSTEM
from fleet_tui.engine.conductor import Conductor
from fleet_tui.engine.events.defaults import DEFAULT_SEQUENCES
from fleet_tui.engine.session import build_router
from fleet_tui.store import routes as route_store
from tests.e2e.test_conductor_flow import wait_for
from tests.fixtures.engine import operator
from tests.integration.router_harness import Clock

S = TaskStatus
SECURITY = ReviewerSpec(kind="builtin", focus="security", name="sec")
LOGIC = ReviewerSpec(kind="builtin", focus="logic", name="logic")
DEMO = ReviewerSpec(kind="agent", focus="architecture", name="demo-arch", profile="demo",
                    preamble="FLEET-DEMO: review")


async def conductor_with_clock(make_conductor: Any, **changes: Any) -> tuple[Conductor, Clock]:
    conductor = await make_conductor(**changes)
    clock = Clock()
    conductor._router = build_router(conductor, clock=clock)  # a cache we can age
    await conductor.start()
    return conductor, clock


async def runs_for(conductor: Conductor, task_id: str) -> list[dict[str, Any]]:
    async with conductor.parts.db.system() as conn:
        rows = await route_store.list_runs(conn, limit=500)
    return sorted((r for r in rows if r["context"].get("task_id") == task_id), key=lambda r: r["id"])


async def until(read: Any, done: Any, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    value = await read()
    while not done(value):
        assert time.monotonic() < deadline, f"not reached: {value}"
        await asyncio.sleep(0.1)
        value = await read()
    return value


async def notification_types(conductor: Conductor, task_id: str) -> list[str]:
    async with conductor.parts.db.system() as conn:
        rows = await conn.fetch("SELECT type FROM fleet_notifications WHERE task_id = $1 ORDER BY id", task_id)
    return [r["type"] for r in rows]


async def test_the_monitor_reviews_through_the_route_and_takes_an_override_after_the_cache_expires(
        make_conductor: Any, git_repo: Path) -> None:
    c, clock = await conductor_with_clock(make_conductor, review__enabled=True,
                                          review__reviewers=[SECURITY, LOGIC, DEMO])
    op = operator()

    async def reviewed(description: str) -> Any:
        spawned = await c.spawn(op, SpawnRequest(description=description, repo=str(git_repo)))
        return await wait_for(c, spawned.task.id, lambda t: t.status in (S.READY, S.REJECTED), 45)

    first = await reviewed("document the first flag")
    assert first.status == S.READY
    assert [v["reviewer"] for v in first.review_verdicts] == ["sec", "logic", "demo-arch"]
    [run] = await runs_for(c, first.id)
    assert (run["event_type"], run["sequence_name"], run["status"]) == ("task.pr_created", "review_pipeline",
                                                                        "succeeded")

    # the operator drops the architecture reviewer from elsewhere (another cache)
    pipeline = next(s for s in DEFAULT_SEQUENCES if s["name"] == "review_pipeline")
    trimmed = {**pipeline, "steps": [s for s in pipeline["steps"] if s["name"] != "review_architecture"]}
    await build_router(c).admin.upsert(op, "sequence", trimmed)

    second = await reviewed("document the second flag")
    assert [v["reviewer"] for v in second.review_verdicts] == ["sec", "logic", "demo-arch"]  # still cached
    clock.now += 301  # past the five-minute cache, no restart
    third = await reviewed("document the third flag")
    assert third.status == S.READY and third.review_status == "approved"
    assert [v["reviewer"] for v in third.review_verdicts] == ["sec", "logic"]
    assert third.metadata["review"]["reviewers"] == ["sec", "logic"]
    assert third.metadata["done"]["checks"]["approvals"]["detail"] == "2 of 2 approvals"


async def test_a_failed_task_follows_the_operators_retry_route(make_conductor: Any, git_repo: Path) -> None:
    c, _ = await conductor_with_clock(make_conductor)
    op = operator()
    service = build_router(c)
    await service.admin.upsert(op, "sequence", {"name": "tell_me_only", "steps": [
        {"name": "tell", "adapter": "notify", "params": {"kind": "failure_seen", "summary": "look at it"}}]})
    await service.admin.upsert(op, "route", {"event_type": "task.failed", "sequence_name": "tell_me_only"})
    spawned = await c.spawn(op, SpawnRequest(description="break\nFLEET-DEMO: fail", repo=str(git_repo),
                                             max_retries=3))
    task = await wait_for(c, spawned.task.id, lambda t: t.status == S.FAILED, 30)
    cycles = c.monitor.cycles
    await wait_for(c, task.id, lambda t: c.monitor.cycles >= cycles + 5, 10)  # several looks at it
    task = await c.registry.get(task.id, operator=SYSTEM)
    assert task.status == S.FAILED and task.retry_count == 0  # no retry: the route says so
    assert (await notification_types(c, task.id)).count("failure_seen") == 1  # once, not per cycle
    assert [r["sequence_name"] for r in await runs_for(c, task.id)] == ["tell_me_only"]

    # another operator keeps the platform's retry policy: retried, then abandoned
    other = operator()
    spawned = await c.spawn(other, SpawnRequest(description="break too\nFLEET-DEMO: fail", repo=str(git_repo),
                                                max_retries=1))
    task = await wait_for(c, spawned.task.id, lambda t: t.status == S.ABANDONED, 30)
    assert task.retry_count == 1
    runs = await until(lambda: runs_for(c, task.id), lambda rs: len(rs) == 3 and rs[-1]["status"] != "running")
    assert [r["sequence_name"] for r in runs] == ["retry_policy", "retry_policy", "notify_abandoned"]
    assert [r["results"]["retry_or_abandon"]["output"]["decision"] for r in runs[:2]] == ["retry", "abandon"]
    assert runs[2]["status"] == "succeeded"
    # the route's notification and the conductor's own terminal one are the same row
    assert (await notification_types(c, task.id)).count("abandoned") == 1


async def test_a_slow_review_runs_beside_the_monitor_cycles(make_conductor: Any, git_repo: Path) -> None:
    slow = ReviewerSpec(kind="agent", focus="architecture", name="slow", profile="demo",
                        preamble="FLEET-DEMO: review\nFLEET-DEMO: review-sleep 2")
    c, _ = await conductor_with_clock(make_conductor, review__enabled=True, review__reviewers=[SECURITY, slow])
    spawned = await c.spawn(operator(), SpawnRequest(description="slow review", repo=str(git_repo)))
    await wait_for(c, spawned.task.id, lambda t: t.status == S.REVIEWING, 30)
    cycles = c.monitor.cycles
    task = await wait_for(c, spawned.task.id, lambda t: t.status == S.READY, 30)
    assert c.monitor.cycles - cycles >= 5  # 0.2 s cycles kept running through a 2 s review
    assert c.monitor.errors == 0 and c.monitor.last_cycle_ms < 1000
    assert {v["reviewer"] for v in task.review_verdicts} == {"sec", "slow"}
    # the route moved the task to ready from inside its run, which ends just after: it lets go
    for _ in range(50):
        if not c.monitor.routes.busy(task.id):
            break
        await asyncio.sleep(0.1)
    assert not c.monitor.routes.busy(task.id)
