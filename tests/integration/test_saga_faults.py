"""The spawn saga under a fault at each step: nothing it made remains (worktree, branch,
tmux session), the task is failed with the step's code, and the audit trail shows the
compensations in reverse order (tmux: the session opened beside the worktree is the first step
made, so the last undone)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from fleet_tui.domain.errors import SpawnError, SpawnErrorCode
from fleet_tui.domain.models import SpawnRequest
from fleet_tui.domain.status import TaskStatus
from fleet_tui.domain.models import SYSTEM
from fleet_tui.engine.conductor import Conductor
from tests.fixtures.engine import operator


def branches(repo: Path) -> list[str]:
    out = subprocess.run(["git", "branch", "--format=%(refname:short)"], cwd=repo,
                         capture_output=True, text=True, check=True).stdout
    return out.split()


async def compensations(conductor: Conductor, task_id: str) -> list[str]:
    detail = await conductor.detail(SYSTEM, task_id)
    return [row["detail"]["step"] for row in detail.audit if row["action"] == "compensate"]


async def assert_nothing_left(conductor: Conductor, repo: Path, task_id: str) -> None:
    assert not (conductor.settings.worktree_base / task_id).exists()
    assert f"fleet/{task_id}" not in branches(repo)
    assert not await conductor.runtime_for("tmux").is_alive(task_id)
    assert task_id not in await conductor.runtime_for("tmux").states()


async def test_setup_command_failure_is_install_failed_and_leaves_nothing(
        make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor(worktree__setup_command=[sys.executable, "-c", "raise SystemExit(3)"])
    result = await conductor.spawn(operator(), SpawnRequest(description="needs setup", repo=str(git_repo)))
    task = result.task
    assert task.status == TaskStatus.FAILED
    assert task.failure_reason == SpawnErrorCode.INSTALL_FAILED
    assert task.failure_context["step"] == "worktree"
    await assert_nothing_left(conductor, git_repo, task.id)
    assert await compensations(conductor, task.id) == ["worktree", "session"]


class FailingAfterSpawn:
    """The real runtime, except that spawn raises after the session exists (a fault
    between starting the process and confirming it)."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    async def spawn(self, launch: Any) -> Any:
        await self.real.spawn(launch)
        raise SpawnError(SpawnErrorCode.PROCESS_FAILED, "injected fault after the session started")


async def test_process_step_fault_removes_the_session_and_the_worktree(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    real = conductor.runtime_for("tmux")
    conductor.parts.runtimes.built[real.kind] = FailingAfterSpawn(real)
    result = await conductor.spawn(operator(), SpawnRequest(description="process fault", repo=str(git_repo)))
    task = result.task
    assert task.status == TaskStatus.FAILED
    assert task.failure_reason == SpawnErrorCode.PROCESS_FAILED
    assert task.failure_context["step"] == "process"
    await assert_nothing_left(conductor, git_repo, task.id)
    assert await compensations(conductor, task.id) == ["process", "worktree", "session"]


class RegistryRefusingRunning:
    def __init__(self, real: Any) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    async def transition(self, task_id: str, version: int, target: Any, **kw: Any) -> Any:
        if target == TaskStatus.RUNNING:
            raise ConnectionResetError("injected: database connection lost")
        return await self.real.transition(task_id, version, target, **kw)


async def test_running_step_fault_kills_the_agent_then_removes_the_worktree(
        make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    conductor.ledger.registry = RegistryRefusingRunning(conductor.ledger.registry)
    result = await conductor.spawn(operator(), SpawnRequest(
        description="transition fault\nFLEET-DEMO: stall 30", repo=str(git_repo)))
    task = result.task
    assert task.status == TaskStatus.FAILED
    assert task.failure_context["step"] == "running"
    assert task.failure_reason == SpawnErrorCode.PROCESS_FAILED
    await assert_nothing_left(conductor, git_repo, task.id)
    assert await compensations(conductor, task.id) == ["process", "worktree", "session"]


async def test_the_session_opens_while_the_worktree_is_made_and_runs_nothing_till_then(
        make_conductor: Any, git_repo: Path, tmp_path: Path) -> None:
    """tmux and the launcher start beside the worktree's making (a spawn's critical path is
    their sum otherwise); until the worktree is there, the session runs no agent and says so."""
    import asyncio

    started = tmp_path / "setup-started"
    conductor = await make_conductor(worktree__setup_command=[
        sys.executable, "-c", f"import pathlib, time; pathlib.Path({str(started)!r}).touch(); time.sleep(1.5)"])
    runtime = conductor.runtime_for("tmux")
    spawn = asyncio.create_task(conductor.spawn(operator(), SpawnRequest(
        description="slow setup\nFLEET-DEMO: stall 30", repo=str(git_repo))))
    for _ in range(200):
        if started.exists():
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    during = await runtime.states()
    assert len(during) == 1, during  # the session is there while setup runs ...
    state = next(iter(during.values()))
    assert not state.alive and state.exit_code is None  # ... with no agent in it yet
    task = (await spawn).task
    assert task.status == TaskStatus.RUNNING, task.failure_context
    assert (await runtime.states())[task.id].alive
    await runtime.kill(task.id)
