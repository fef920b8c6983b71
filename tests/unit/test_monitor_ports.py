"""The monitor on small fakes of its ports (engine/ports.py): no database, no conductor, no
agent. A cycle is driven with the lease claim replaced (it is the database's part); each test
reads what the monitor asked of its ports."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleet_tui.config import Settings
from fleet_tui.domain.models import CIStatus, Lease, TaskPatch, TaskRecord
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.kit.bus import MonitorTick
from fleet_tui.engine.watch.monitor import Monitor
from fleet_tui.infra.protocols import Change, ChangeRef, ProcessState

S = TaskStatus


def a_task(status: TaskStatus = S.RUNNING, *, task_id: str = "t-1") -> TaskRecord:
    now = datetime.now(UTC)
    return TaskRecord(id=task_id, operator_id="op", status=status, version=3, description="fix it",
                      repo="/repo", base_branch="main", branch=f"fleet/{task_id}", created_at=now,
                      updated_at=now, spawned_at=now)


class FakeCheckout:
    def __init__(self, findings: list[str]) -> None:
        self.findings = findings

    def tampering(self) -> list[str]:
        return self.findings


class FakeRuntime:
    def __init__(self, states: dict[str, ProcessState]) -> None:
        self._states = states
        self.killed: list[str] = []

    async def states(self) -> dict[str, ProcessState]:
        return dict(self._states)

    async def tail(self, task_id: str, n: int = 100) -> list[str]:
        return ["the agent's last words"]

    async def last_output_at(self, task_id: str) -> float | None:
        return None

    async def kill(self, task_id: str) -> None:
        self.killed.append(task_id)


class FakePlace:
    def __init__(self, states: dict[str, ProcessState], *, tampered: list[str] | None = None) -> None:
        self.runtime = FakeRuntime(states)
        self.tampered = tampered or []

    def runtime_for(self, kind: Any) -> Any:
        return self.runtime

    def checkout(self, task: TaskRecord) -> Any:
        return FakeCheckout(self.tampered)

    def change_ref(self, task: TaskRecord) -> ChangeRef:
        return ChangeRef(repo=Path(task.repo), branch=task.branch or "", base=task.base_branch)


class FakeForge:
    def __init__(self, change: Change | None) -> None:
        self.change = change
        self.asked: list[ChangeRef] = []

    async def find_change(self, ref: ChangeRef) -> Change | None:
        self.asked.append(ref)
        return self.change


class FakeWorktrees:
    def __init__(self) -> None:
        self.preserved: list[tuple[Any, str]] = []

    async def preserve(self, checkout: Any, base: str) -> Path:
        self.preserved.append((checkout, base))
        return Path("/bundles/t-1.bundle")


class Ledger:
    """The writes the monitor makes, as recorded calls."""

    def __init__(self) -> None:
        self.moves: list[tuple[str, TaskStatus, TaskPatch | None, str | None]] = []
        self.finished: list[tuple[str, int | None, str | None]] = []
        self.notes: list[tuple[str, str]] = []
        self.drained: list[int] = []
        self.sweeps = 0
        self.cycles_s: list[float] = []
        self.published: list[Any] = []

    async def move(self, task: TaskRecord, target: TaskStatus, patch: TaskPatch | None = None, *,
                   actor: str, reason: str | None = None) -> TaskRecord:
        self.moves.append((task.id, target, patch, reason))
        return task.model_copy(update={"status": target, "version": task.version + 1})

    async def finish_execution(self, task: TaskRecord, *, exit_code: int | None, failure: str | None = None) -> None:
        self.finished.append((task.id, exit_code, failure))

    async def notify(self, task: TaskRecord, kind: str, summary: str, *, dedup_key: str | None = None) -> None:
        self.notes.append((kind, summary))

    async def audit(self, task: TaskRecord, action: str, detail: dict[str, Any]) -> None:
        raise AssertionError(f"no audit expected here: {action}")

    async def patch(self, task: TaskRecord, patch: TaskPatch) -> TaskRecord:
        raise AssertionError("no patch expected here")

    async def drain(self, room: int) -> None:
        self.drained.append(room)

    def beside(self, work: Any, *, name: str) -> None:
        work.close()  # nothing here runs work beside a cycle: the lost-leases note needs a lapse
        raise AssertionError(f"no background work expected here: {name}")

    async def sweep(self) -> str:
        self.sweeps += 1
        return "swept"


class Headroom:
    fleet_capacity = 10

    def limit_for(self, tier: Any) -> int:
        return 10


async def no_dispatch(event_type: str, context: dict[str, Any], *, operator_id: str,
                      trace_id: str | None = None) -> None:
    raise AssertionError("no route expected here")


async def no_relaunch(task: TaskRecord, *, actor: str) -> TaskRecord:
    raise AssertionError("no relaunch expected here")


async def no_resume_plan(task: TaskRecord, worktree: Path, *, prompt: str) -> Any:
    raise AssertionError("no resume expected here")


def make_monitor(place: FakePlace, ledger: Ledger, *, forge: FakeForge | None = None,
                 worktrees: FakeWorktrees | None = None, settings: Settings | None = None) -> Monitor:
    async def no_live() -> list[TaskRecord]:
        return []

    return Monitor(settings=settings or Settings(), conductor_id="c-test", db=None, place=place,  # type: ignore[arg-type]
                   forge=forge or FakeForge(None), worktrees=worktrees or FakeWorktrees(),  # type: ignore[arg-type]
                   profiles={}, move=ledger.move, patch=ledger.patch, notify=ledger.notify, audit=ledger.audit,
                   finish_execution=ledger.finish_execution, list_live=no_live, spawning_here=lambda _: False,
                   headroom=Headroom(), drain_queue=ledger.drain, relaunch=no_relaunch, dispatch=no_dispatch,
                   plan_resume=no_resume_plan, reviews_on=True, sweep=ledger.sweep,
                   observe_cycle_s=ledger.cycles_s.append, publish=ledger.published.append,
                   background=ledger.beside)


def claiming(monitor: Monitor, *tasks: TaskRecord) -> None:
    """The lease claim (the database's part) answers with these tasks, leased to us."""

    async def claim() -> list[tuple[TaskRecord, Lease]]:
        monitor.fleet_live = len(tasks)
        return [(task, Lease(owner="c-test", epoch=1)) for task in tasks]

    monitor._claim = claim  # type: ignore[method-assign]


async def test_a_running_task_whose_process_is_gone_fails_process_missing() -> None:
    ledger, place = Ledger(), FakePlace({})  # the runtime knows no process for it
    monitor = make_monitor(place, ledger)
    claiming(monitor, a_task())
    await monitor.run_cycle()
    assert monitor.errors == 0
    assert [(tid, target, reason) for tid, target, _, reason in ledger.moves] == [
        ("t-1", S.FAILED, "process_missing")]
    patch = ledger.moves[0][2]
    assert patch is not None and patch.failure_reason == "process_missing"
    assert ledger.finished == [("t-1", None, "process_missing")]
    assert ledger.notes == [("failed", "attempt 1 failed: process_missing")]
    assert ledger.drained == [9]  # the fleet's room, asked of the queue: capacity 10, one live
    assert len(ledger.cycles_s) == 1 and isinstance(ledger.published[-1], MonitorTick)


async def test_a_vanished_agent_that_rewrote_its_worktree_links_fails_tampered_instead() -> None:
    ledger, worktrees = Ledger(), FakeWorktrees()
    place = FakePlace({}, tampered=[".git points outside the worktree"])
    monitor = make_monitor(place, ledger, worktrees=worktrees)
    claiming(monitor, a_task())
    await monitor.run_cycle()
    assert [(target, reason) for _, target, _, reason in ledger.moves] == [(S.FAILED, "tampered")]
    context = ledger.moves[0][2].failure_context  # type: ignore[union-attr]
    assert context is not None and context["tampered"] == [".git points outside the worktree"]
    assert context["bundle"] == "/bundles/t-1.bundle" and len(worktrees.preserved) == 1
    assert ledger.finished == [("t-1", None, "tampered")]


async def test_a_dead_agent_that_exited_0_with_a_change_moves_to_pr_created() -> None:
    ledger = Ledger()
    place = FakePlace({"t-1": ProcessState(task_id="t-1", ref="fleet-t-1", alive=False, exit_code=0)})
    forge = FakeForge(Change(head_sha="abcdef0123456789", commits_ahead=2, pr_number=7, pr_url="https://x/7"))
    monitor = make_monitor(place, ledger, forge=forge)
    claiming(monitor, a_task())
    await monitor.run_cycle()
    assert monitor.errors == 0
    assert [(target, reason) for _, target, _, reason in ledger.moves] == [
        (S.PR_CREATED, "change abcdef012345 (2 commits)")]
    patch = ledger.moves[0][2]
    assert patch is not None and patch.pr_number == 7 and patch.ci_status == CIStatus.PENDING
    assert patch.exit_code == 0
    assert ledger.finished == [("t-1", 0, None)]  # the attempt closed as a success
    assert forge.asked == [ChangeRef(repo=Path("/repo"), branch="fleet/t-1", base="main")]


async def test_a_dead_agent_that_exited_0_without_a_change_fails_no_change() -> None:
    ledger = Ledger()
    place = FakePlace({"t-1": ProcessState(task_id="t-1", ref="fleet-t-1", alive=False, exit_code=0)})
    monitor = make_monitor(place, ledger, forge=FakeForge(None))
    claiming(monitor, a_task())
    await monitor.run_cycle()
    assert [(target, reason) for _, target, _, reason in ledger.moves] == [(S.FAILED, "no_change")]
    context = ledger.moves[0][2].failure_context  # type: ignore[union-attr]
    assert context is not None and "exited 0 without committing" in context["error_output"]
    assert ledger.finished == [("t-1", 0, "no_change")]


async def test_a_runtime_that_cannot_answer_skips_its_tasks_and_says_so() -> None:
    class Unreachable(FakeRuntime):
        async def states(self) -> dict[str, ProcessState]:
            raise ConnectionError("tmux server gone")

    ledger, place = Ledger(), FakePlace({})
    place.runtime = Unreachable({})
    monitor = make_monitor(place, ledger)
    claiming(monitor, a_task())
    await monitor.run_cycle()
    assert ledger.moves == []  # never failed for its runtime's silence
    assert monitor.health()["degraded_reasons"] == {"runtime:tmux": "ConnectionError: tmux server gone"}


async def test_the_disk_sweep_runs_through_its_port_when_due() -> None:
    ledger = Ledger()
    monitor = make_monitor(FakePlace({}), ledger, settings=Settings(monitor={"sweep_interval_s": 0.05}))
    claiming(monitor)
    await monitor.run_cycle()
    assert ledger.sweeps == 0  # not due yet
    await asyncio.sleep(0.06)
    await monitor.run_cycle()
    assert ledger.sweeps == 1 and monitor.last_sweep == "swept"
