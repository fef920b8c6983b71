"""The monitor on real parts: stall, timeout, a process killed from outside, CI failure,
a forge that errors (only its checks skipped), a cycle past its deadline, reconcile."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

from fleet_tui.domain.errors import FleetError
from fleet_tui.domain.models import CIStatus, SpawnRequest
from fleet_tui.domain.status import TaskStatus
from fleet_tui.domain.models import SYSTEM
from fleet_tui.engine.conductor import Conductor
from fleet_tui.store import leases
from tests.e2e.test_conductor_flow import wait_for
from tests.fixtures.engine import operator

S = TaskStatus


async def spawn(conductor: Conductor, repo: Path, description: str) -> str:
    result = await conductor.spawn(operator(), SpawnRequest(description=description, repo=str(repo), max_retries=0))
    assert result.task.status == S.RUNNING, result.task.failure_context
    return result.task.id


async def test_a_stalled_agent_is_killed_and_failed(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor(monitor__stall_minutes=0.02)  # 1.2 s of silence
    task_id = await spawn(conductor, git_repo, "FLEET-DEMO: stall 60")
    await conductor.start()
    task = await wait_for(conductor, task_id, lambda t: t.status in (S.FAILED, S.ABANDONED), timeout_s=20)
    detail = await conductor.detail(SYSTEM, task_id)
    reasons = [r["detail"].get("reason") for r in detail.audit if r["to_status"] == "failed"]
    assert reasons == ["stalled"]
    assert not await conductor.runtime_for("tmux").is_alive(task_id)
    assert task.failure_context and "no output and no commit" in task.failure_context["error_output"]


async def test_a_task_past_its_timeout_is_killed_and_failed(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor(monitor__timeout_minutes=0.02)
    task_id = await spawn(conductor, git_repo, "FLEET-DEMO: flood 5\nFLEET-DEMO: sleep 60")
    await conductor.start()
    await wait_for(conductor, task_id, lambda t: t.status in (S.FAILED, S.ABANDONED), timeout_s=20)
    detail = await conductor.detail(SYSTEM, task_id)
    assert [r["detail"].get("reason") for r in detail.audit if r["to_status"] == "failed"] == ["timeout"]
    assert not await conductor.runtime_for("tmux").is_alive(task_id)


async def test_an_agent_killed_from_outside_fails_the_task(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor(agents__profiles={"demo": {"resume_command": None}})
    task_id = await spawn(conductor, git_repo, "FLEET-DEMO: stall 60")
    await conductor.start()
    subprocess.run(["tmux", "-L", conductor.settings.runtime.tmux_socket, "kill-session",
                    "-t", f"=fleet-{task_id}"], check=True)
    task = await wait_for(conductor, task_id, lambda t: t.status in (S.FAILED, S.ABANDONED), timeout_s=20)
    assert task.failure_reason == "process_missing"


async def test_an_oom_exit_is_recorded_as_oom(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    task_id = await spawn(conductor, git_repo, "FLEET-DEMO: exit 137")
    await conductor.start()
    task = await wait_for(conductor, task_id, lambda t: t.status in (S.FAILED, S.ABANDONED), timeout_s=20)
    assert task.failure_reason == "oom" and task.exit_code == 137
    assert task.failure_context["oom"] is True


async def test_failing_ci_fails_the_task_with_the_ci_output(make_conductor: Any, git_repo: Path) -> None:
    ci = [sys.executable, "-c", "import sys; print('3 tests failed: test_login'); sys.exit(1)"]
    conductor = await make_conductor(forge__ci_command=ci)
    task_id = await spawn(conductor, git_repo, "break the tests")
    await conductor.start()
    task = await wait_for(conductor, task_id, lambda t: t.status in (S.FAILED, S.ABANDONED), timeout_s=20)
    assert task.ci_status == CIStatus.FAILING
    assert task.failure_reason == "ci_failed"
    assert "3 tests failed: test_login" in task.failure_context["ci_output"]


class BrokenForge:
    name = "broken"

    def __init__(self) -> None:
        self.calls = 0

    async def _fail(self, *_: Any) -> Any:
        self.calls += 1
        raise FleetError("forge unreachable")

    find_change = ci_status = diff = merge = _fail


async def test_a_forge_that_errors_only_skips_its_checks(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor(monitor__stall_minutes=0.02)
    broken = BrokenForge()
    conductor.parts.forge = broken
    done_id = await spawn(conductor, git_repo, "quick change")
    stalled_id = await spawn(conductor, git_repo, "FLEET-DEMO: stall 60")
    await conductor.start()
    # liveness checks still run (the stalled agent is failed) while the forge check is skipped
    await wait_for(conductor, stalled_id, lambda t: t.status in (S.FAILED, S.ABANDONED), timeout_s=20)
    while broken.calls < 3:
        await asyncio.sleep(0.1)
    task = await conductor.registry.get(done_id, operator=SYSTEM)
    assert task.status == S.RUNNING  # its change could not be looked up: left as it was
    health = conductor.monitor.health()
    assert "forge" in health["degraded"]
    assert health["degraded_reasons"]["forge"] == "FleetError: forge unreachable"  # why, for the health panel
    assert conductor.monitor.errors == 0


async def test_a_cycle_past_its_deadline_is_aborted_and_the_next_one_runs(make_conductor: Any) -> None:
    conductor = await make_conductor(monitor__cycle_deadline_s=0.3)
    await conductor.start(monitor=False)
    monitor = conductor.monitor
    real_claim = monitor._claim
    hang = asyncio.Event()

    async def slow_claim() -> Any:
        if not hang.is_set():
            hang.set()
            await asyncio.sleep(5)
        return await real_claim()

    monitor._claim = slow_claim  # type: ignore[method-assign]
    await monitor.run_cycle()
    assert monitor.errors == 1 and monitor.cycles == 1
    await monitor.run_cycle()
    assert monitor.errors == 1 and monitor.cycles == 2
    assert monitor.health()["last_cycle_ms"] < 300


async def test_reconcile_fails_live_tasks_without_a_process_and_leaves_strangers_alone(
        make_conductor: Any, git_repo: Path) -> None:
    first = await make_conductor()
    task_id = await spawn(first, git_repo, "FLEET-DEMO: stall 60")
    stranger = "0123456789ab"
    socket = first.settings.runtime.tmux_socket
    subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-s", f"fleet-{stranger}", "sleep", "60"], check=True)
    subprocess.run(["tmux", "-L", socket, "kill-session", "-t", f"=fleet-{task_id}"], check=True)
    await leases.release(first.parts.db, first.conductor_id)  # the first is gone: its leases lapse
    second = await make_conductor(same_db=first)  # a restarted conductor
    report = await second.monitor_reconcile() if hasattr(second, "monitor_reconcile") else None
    await second.start(monitor=False)
    task = await second.registry.get(task_id, operator=SYSTEM)
    assert task.status == S.FAILED and task.failure_reason == "conductor_restart"
    assert await second.runtime_for("tmux").is_alive(stranger)
    assert report is None


async def test_reconcile_survives_its_backend_being_terminated_after_the_claim(
        make_conductor: Any, git_repo: Path) -> None:
    """The start once died here: leases taken, then the connection cut (pg_terminate_backend)."""
    conductor = await make_conductor()
    task_id = await spawn(conductor, git_repo, "FLEET-DEMO: sleep 60")
    registry, real_list_live = conductor.registry, conductor.registry.list_live
    cuts = 0

    async def cut_then_list(*args: Any, **kw: Any) -> Any:
        nonlocal cuts
        if cuts < 2:  # twice: the retry must survive a second cut too
            cuts += 1
            async with conductor.parts.db.system() as conn:
                await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return await real_list_live(*args, **kw)

    registry.list_live = cut_then_list  # type: ignore[method-assign]
    await conductor.start(monitor=False)
    assert cuts == 2
    task = await registry.get(task_id, operator=SYSTEM)
    assert task.status == S.RUNNING  # its agent is alive: reconciling left it to the monitor


async def test_edits_left_uncommitted_are_committed_by_the_conductor(make_conductor: Any, git_repo: Path) -> None:
    """Exit 0 with edits but no commit is a change, not no_change: the conductor commits it
    under its own identity (audited), untracked files included, .gitignore respected."""
    (git_repo / ".gitignore").write_text("*.log\n")
    subprocess.run(["git", "-C", str(git_repo), "add", ".gitignore"], check=True)
    subprocess.run(["git", "-C", str(git_repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm",
                    "ignore logs"], check=True)
    conductor = await make_conductor()
    task_id = await spawn(conductor, git_repo, "Add notes\nFLEET-DEMO: write notes/new.md fresh notes\n"
                                               "FLEET-DEMO: write debug.log noise\nFLEET-DEMO: no-commit")
    await conductor.start()
    task = await wait_for(conductor, task_id, lambda t: t.status not in (S.SPAWNING, S.RUNNING), timeout_s=30)
    assert task.status in (S.PR_CREATED, S.REVIEWING, S.READY), task.failure_reason
    detail = await conductor.detail(SYSTEM, task_id)
    (committed,) = [r["detail"] for r in detail.audit if r["action"] == "conductor_committed"]
    assert committed["files"] == ["notes/new.md"]
    log = subprocess.run(["git", "-C", task.worktree_path, "log", "-1", "--format=%an|%s", "--name-only"],
                         capture_output=True, text=True, check=True).stdout
    assert log.startswith("fleet-tui conductor|Add notes") and "notes/new.md" in log and "debug.log" not in log
    assert (Path(task.worktree_path) / "debug.log").exists()  # ignored, left as it was


async def test_a_task_made_under_another_data_directory_fails_once_and_says_why(
        make_conductor: Any, git_repo: Path) -> None:
    """Spawned by a conductor with another data directory (a `fleet-tui spawn` without the
    server's FLEET_DATA_DIR): its worktree lies outside this conductor's worktree base, so
    nothing here may touch it. Each cycle failed on it with a traceback and the task stayed
    `running` for ever; now it fails once, is not retried by policy, and says why."""
    first = await make_conductor()
    second = await make_conductor(same_db=first, own_data_dir=True, retry__auto=True)
    assert second.settings.data_dir != first.settings.data_dir
    await second.start(monitor=False)  # running before the spawn, as a server is
    task_id = await spawn(first, git_repo, "FLEET-DEMO: sleep 60")
    await leases.release(first.parts.db, first.conductor_id)  # the first one's leases lapse
    # its agent runs where this conductor cannot see it (the other's tmux server)
    subprocess.run(["tmux", "-L", first.settings.runtime.tmux_socket, "kill-session", "-t", f"=fleet-{task_id}"],
                   check=True)
    for _ in range(40):
        await second.monitor.run_cycle()
        task = await second.registry.get(task_id, operator=SYSTEM)
        if task.status != S.RUNNING:
            break
        await asyncio.sleep(0.25)
    for _ in range(3):  # the retry policy looks again: it leaves the task failed
        await second.monitor.run_cycle()
    task = await second.registry.get(task_id, operator=SYSTEM)
    assert task.status == S.FAILED and task.failure_reason == "worktree_elsewhere", (task.status, task.failure_context)
    message = (task.failure_context or {}).get("message", "")
    assert str(task.worktree_path) in message and "FLEET_DATA_DIR" in message, message
    assert second.monitor.errors == 0
