"""needs_input and resume on real tmux agents."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

from fleet_tui.domain.models import SpawnRequest
from fleet_tui.domain.status import TaskStatus
from fleet_tui.domain.models import SYSTEM
from fleet_tui.engine.conductor import Conductor
from tests.e2e.test_conductor_flow import wait_for
from tests.fixtures.engine import operator

S = TaskStatus


async def notifications(conductor: Conductor, task_id: str, kind: str) -> int:
    async with conductor.parts.db.system() as conn:
        return await conn.fetchval(
            "SELECT count(*) FROM fleet_notifications WHERE task_id = $1 AND type = $2", task_id, kind)


async def test_a_waiting_agent_is_flagged_notified_once_and_cleared_when_answered(
        make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    await conductor.start()
    spawned = await conductor.spawn(operator(), SpawnRequest(
        description="ask first\nFLEET-DEMO: wait-input", repo=str(git_repo)))
    task = await wait_for(conductor, spawned.task.id, lambda t: t.needs_input, timeout_s=20)
    cycles = conductor.monitor.cycles
    while conductor.monitor.cycles < cycles + 3:  # still waiting: no second notification
        await asyncio.sleep(0.1)
    assert await notifications(conductor, task.id, "needs_input") == 1
    await conductor.runtime_for("tmux").send_input(task.id, "y")
    task = await wait_for(conductor, task.id, lambda t: not t.needs_input, timeout_s=20)
    await wait_for(conductor, task.id, lambda t: t.status != S.RUNNING, timeout_s=20)
    assert await notifications(conductor, task.id, "needs_input") == 1


async def test_with_auto_answer_the_agent_continues_by_itself(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor(agents__profiles={"demo": {"answer_automatically": True}})
    await conductor.start()
    spawned = await conductor.spawn(operator(), SpawnRequest(
        description="ask first\nFLEET-DEMO: wait-input", repo=str(git_repo)))
    task = await wait_for(conductor, spawned.task.id,
                          lambda t: t.status in (S.PR_CREATED, S.REVIEWING, S.READY), timeout_s=30)
    assert "[demo] continuing" in "\n".join(await conductor.logs(SYSTEM, task.id))
    detail = await conductor.detail(SYSTEM, task.id)
    assert [r["action"] for r in detail.audit].count("auto_answered") == 1


async def test_an_agent_killed_from_outside_is_resumed_with_the_resume_command(
        make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    spawned = await conductor.spawn(operator(), SpawnRequest(
        description="long job\nFLEET-DEMO: stall 60", repo=str(git_repo)))
    await conductor.start()
    subprocess.run(["tmux", "-L", conductor.settings.runtime.tmux_socket, "kill-session",
                    "-t", f"=fleet-{spawned.task.id}"], check=True)
    task = await wait_for(conductor, spawned.task.id,
                          lambda t: t.status in (S.PR_CREATED, S.REVIEWING, S.READY, S.FAILED), timeout_s=30)
    assert task.status != S.FAILED, task.failure_context
    assert task.metadata["resumes"] == 1 and task.retry_count == 0
    detail = await conductor.detail(SYSTEM, task.id)
    assert "resumed" in [r["action"] for r in detail.audit]


async def test_without_a_resume_command_a_vanished_agent_fails_and_is_retried(
        make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor(agents__profiles={"demo": {"resume_command": None}})
    spawned = await conductor.spawn(operator(), SpawnRequest(
        description="long job\nFLEET-DEMO: stall 60", repo=str(git_repo)))
    await conductor.start()
    subprocess.run(["tmux", "-L", conductor.settings.runtime.tmux_socket, "kill-session",
                    "-t", f"=fleet-{spawned.task.id}"], check=True)
    task = await wait_for(conductor, spawned.task.id, lambda t: t.retry_count >= 1, timeout_s=30)
    detail = await conductor.detail(SYSTEM, task.id)
    failed = [r for r in detail.audit if r["to_status"] == "failed"]
    assert failed and failed[0]["detail"].get("reason") == "process_missing"
