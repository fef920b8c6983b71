"""The conductor end to end on real parts: PostgreSQL, git, tmux, the demo agent and the
local forge with a real CI command."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any
from collections.abc import Callable

import pytest

from fleet_tui.domain.models import CIStatus, SpawnRequest, TaskRecord, Tier
from fleet_tui.domain.status import TaskStatus
from fleet_tui.domain.models import SYSTEM
from fleet_tui.engine.conductor import Conductor
from fleet_tui.store import executions
from tests.fixtures.engine import operator

S = TaskStatus


async def wait_for(conductor: Conductor, task_id: str, done: Callable[[TaskRecord], bool],
                   timeout_s: float = 30.0) -> TaskRecord:
    deadline = time.monotonic() + timeout_s
    task = await conductor.registry.get(task_id, operator=SYSTEM)
    while not done(task):
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_id} stuck in {task.status}: {task.failure_context}")
        await asyncio.sleep(0.1)
        task = await conductor.registry.get(task_id, operator=SYSTEM)
    return task


def reviewable(task: TaskRecord) -> bool:
    """A change exists and CI passed (review, when configured, may already have begun)."""
    return task.ci_status == CIStatus.PASSING and task.status in (S.PR_CREATED, S.REVIEWING, S.READY)


async def statuses_seen(conductor: Conductor, task_id: str) -> list[str]:
    detail = await conductor.detail(SYSTEM, task_id)
    return [row["to_status"] for row in detail.audit if row["action"] == "transition"]


async def test_three_tasks_reach_a_reviewable_change_with_ci_passing(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    await conductor.start()
    op = operator()
    results = [await conductor.spawn(op, SpawnRequest(description=f"demo change {i}", repo=str(git_repo)))
               for i in range(3)]
    for result in results:
        assert result.created and result.task.status == S.RUNNING
        task = await wait_for(conductor, result.task.id, reviewable)
        assert task.exit_code == 0
        diff = await conductor.diff(op, task.id)
        assert "FLEET_DEMO.md" in diff
        seen = await statuses_seen(conductor, task.id)
        assert seen[:3] == ["spawning", "running", "pr_created"]


def sessions_and_pipes(socket: str, task_id: str) -> tuple[list[str], list[str]]:
    """The task's tmux session on the fleet's socket, and the pipe-pane processes writing its log."""
    listed = subprocess.run(["tmux", "-L", socket, "list-sessions", "-F", "#{session_name}"],
                            capture_output=True, text=True).stdout.split()
    pipes = subprocess.run(["pgrep", "-f", f"cat >> .*{task_id}.log"], capture_output=True, text=True).stdout.split()
    return [s for s in listed if s == f"fleet-{task_id}"], pipes


async def test_an_agent_that_has_exited_leaves_no_session_or_pipe_behind(make_conductor: Any, git_repo: Path) -> None:
    """Its dead pane and the pipe's `cat` (two processes) stayed until the retention sweep, 72 h
    by default: hundreds of processes on a busy day. The log keeps every line."""
    conductor = await make_conductor()
    await conductor.start()
    spawned = await conductor.spawn(operator(), SpawnRequest(description="leaves nothing", repo=str(git_repo)))
    socket = conductor.settings.runtime.tmux_socket
    assert sessions_and_pipes(socket, spawned.task.id)[0]  # while it runs
    task = await wait_for(conductor, spawned.task.id, reviewable)
    deadline = time.monotonic() + 5
    while any(sessions_and_pipes(socket, task.id)) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert sessions_and_pipes(socket, task.id) == ([], [])
    assert any("[demo] done" in line for line in await conductor.logs(SYSTEM, task.id, 50))


async def test_failing_twice_then_succeeding_carries_the_failure_into_the_next_prompt(
        make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    await conductor.start()
    op = operator()
    spawned = await conductor.spawn(op, SpawnRequest(
        description="flaky fix\nFLEET-DEMO: fail-until-attempt 3", repo=str(git_repo)))
    task = await wait_for(conductor, spawned.task.id, reviewable, timeout_s=90)
    assert task.retry_count == 2
    runs = await executions.list_for_task(conductor.parts.db, task.id, operator=None)
    assert [r["attempt"] for r in runs] == [1, 2, 3]
    assert [r["exit_code"] for r in runs[:2]] == [1, 1]
    assert "previous attempt failed" not in runs[0]["prompt"]
    assert "previous attempt failed" in runs[1]["prompt"]
    assert "Exit code: 1" in runs[1]["prompt"]
    assert runs[1]["context_hash"] and runs[1]["context_hash"] != runs[0]["context_hash"]


async def test_a_task_that_keeps_failing_is_abandoned_after_its_budget(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    await conductor.start()
    op = operator()
    spawned = await conductor.spawn(op, SpawnRequest(
        description="hopeless\nFLEET-DEMO: fail always", repo=str(git_repo), max_retries=2))
    task = await wait_for(conductor, spawned.task.id, lambda t: t.status == S.ABANDONED, timeout_s=90)
    assert task.retry_count == 2
    runs = await executions.list_for_task(conductor.parts.db, task.id, operator=None)
    assert len(runs) == 3
    async with conductor.parts.db.system() as conn:
        kinds = [r["type"] for r in await conn.fetch(
            "SELECT type FROM fleet_notifications WHERE task_id = $1 ORDER BY id", task.id)]
    assert kinds.count("abandoned") == 1


async def test_a_stopped_task_is_cancelled_and_never_retried(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    await conductor.start()
    op = operator()
    spawned = await conductor.spawn(op, SpawnRequest(
        description="long job\nFLEET-DEMO: stall 60", repo=str(git_repo)))
    assert spawned.task.status == S.RUNNING
    stopped = await conductor.stop(op, spawned.task.id)
    assert stopped.status == S.CANCELLED
    assert not await conductor.runtime_for("tmux").is_alive(spawned.task.id)
    cycles = conductor.monitor.cycles
    while conductor.monitor.cycles < cycles + 3:
        await asyncio.sleep(0.1)
    task = await conductor.registry.get(spawned.task.id, operator=SYSTEM)
    assert task.status == S.CANCELLED and task.retry_count == 0
    runs = await executions.list_for_task(conductor.parts.db, task.id, operator=None)
    assert len(runs) == 1


async def test_same_idempotency_key_twice_gives_one_task(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    op = operator()
    request = SpawnRequest(description="same thing", repo=str(git_repo), idempotency_key="req-1")
    first = await conductor.spawn(op, request)
    second = await conductor.spawn(op, request)
    assert first.created and not second.created
    assert second.task.id == first.task.id
    # derived key: same operator + repo + description (whitespace/case folded)
    a = await conductor.spawn(op, SpawnRequest(description="Add  a flag", repo=str(git_repo)))
    b = await conductor.spawn(op, SpawnRequest(description="add a flag ", repo=str(git_repo)))
    assert b.task.id == a.task.id and not b.created


@pytest.mark.parametrize("tier", [Tier.OBSERVER, Tier.PARTICIPANT])
async def test_tiers_below_builder_cannot_spawn(make_conductor: Any, git_repo: Path, tier: Tier) -> None:
    from fleet_tui.domain.errors import PermissionDeniedError

    conductor = await make_conductor()
    with pytest.raises(PermissionDeniedError, match="builder"):
        await conductor.spawn(operator(tier), SpawnRequest(description="x", repo=str(git_repo)))
    summary = await conductor.status(SYSTEM, all_operators=True)
    assert summary.tasks == []


async def test_a_terminal_move_calls_the_hooks_the_composition_root_registered(make_conductor: Any,
                                                                               git_repo: Path) -> None:
    """Conductor.move knows no event router: session.build_conductor registers it as an
    on_terminal hook (the routes for task.cancelled and the like run through it)."""
    conductor = await make_conductor()
    dispatched: list[tuple[str, dict[str, Any]]] = []

    async def dispatch(event_type: str, context: dict[str, Any], **how: Any) -> None:
        dispatched.append((event_type, context))

    conductor.router.dispatch = dispatch  # the router's side is tested in tests/integration/test_router*
    seen: list[tuple[str, TaskStatus, str | None]] = []
    conductor.on_terminal.append(lambda task, status, reason: seen.append((task.id, status, reason)))
    op = operator()
    spawned = await conductor.spawn(op, SpawnRequest(description="long job\nFLEET-DEMO: stall 60", repo=str(git_repo)))
    await conductor.stop(op, spawned.task.id)
    assert [(task_id, status) for task_id, status, _ in seen] == [(spawned.task.id, S.CANCELLED)]
    for _ in range(50):
        if dispatched:
            break
        await asyncio.sleep(0.02)
    assert [(event, context["task_id"]) for event, context in dispatched] == [("task.cancelled", spawned.task.id)]
