"""Engine services on small fakes of their ports (engine/ports.py): no database, no conductor."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleet_tui.domain.models import TaskRecord
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.attempts.failure import capture_task_failure
from fleet_tui.engine.review.done import evaluate_done
from fleet_tui.engine.watch.route_dispatch import TaskRoutes
from fleet_tui.infra.protocols import Change, ChangeRef


def a_task(worktree: Path | None = None, *, version: int = 1) -> TaskRecord:
    now = datetime.now(UTC)
    return TaskRecord(id="t-1", operator_id="op", status=TaskStatus.RUNNING, version=version,
                      description="fix it", repo="/repo", base_branch="main", branch="fleet/t-1",
                      worktree_path=str(worktree) if worktree else None, created_at=now, updated_at=now)


class FakeRuntime:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    async def tail(self, task_id: str, n: int = 100) -> list[str]:
        return self.lines[-n:]


class FakeWorkplace:
    def __init__(self, lines: list[str]) -> None:
        self.runtime = FakeRuntime(lines)

    def runtime_for(self, kind: Any) -> Any:
        return self.runtime

    def checkout(self, task: TaskRecord) -> Any:
        return ("checkout", task.id)

    def change_ref(self, task: TaskRecord) -> ChangeRef:
        return ChangeRef(repo=Path(task.repo), branch=task.branch or "", base=task.base_branch)


class FakeForge:
    def __init__(self, change: Change | None = None, diff: str = "") -> None:
        self.change, self.diff_text = change, diff
        self.asked: list[ChangeRef] = []

    async def find_change(self, ref: ChangeRef) -> Change | None:
        self.asked.append(ref)
        return self.change

    async def diff(self, ref: ChangeRef) -> str:
        self.asked.append(ref)
        return self.diff_text


class FakeWorktrees:
    def __init__(self, files: list[str]) -> None:
        self.files = files
        self.asked: list[Any] = []

    async def changed_files(self, checkout: Any) -> list[str]:
        self.asked.append(checkout)
        return self.files


async def test_failure_capture_reads_the_tail_diff_and_files_through_its_ports(tmp_path: Path) -> None:
    place = FakeWorkplace(["starting", "Traceback: boom", "KEY=sk-ant-abcdefghijklmnopqrstuvwxyz0123456789"])
    forge, worktrees = FakeForge(diff="+print('x')\n"), FakeWorktrees(["app.py"])
    context = await capture_task_failure(a_task(tmp_path), place=place, forge=forge, worktrees=worktrees,
                                         exit_code=1, note="the agent exited")
    assert context["error_output"].startswith("the agent exited")
    assert "Traceback: boom" in context["error_output"]
    assert "sk-ant-abcdefghijklmnopqrstuvwxyz0123456789" not in context["error_output"]  # sanitized
    assert context["diff"] == "+print('x')\n" and context["modified_files"] == ["app.py"]
    assert forge.asked == [ChangeRef(repo=Path("/repo"), branch="fleet/t-1", base="main")]
    assert worktrees.asked == [("checkout", "t-1")]
    assert context["oom"] is False


async def test_failure_capture_without_a_worktree_asks_no_forge() -> None:
    forge = FakeForge(diff="never read")
    context = await capture_task_failure(a_task(None), place=FakeWorkplace(["Killed"]), forge=forge,
                                         worktrees=FakeWorktrees([]), exit_code=137)
    assert forge.asked == [] and context["diff"] == ""
    assert context["oom"] is True


async def test_done_asks_the_forge_for_the_change_it_is_given() -> None:
    ref = ChangeRef(repo=Path("/repo"), branch="fleet/t-1", base="main")
    forge = FakeForge(Change(head_sha="abc", commits_ahead=2))
    state = await evaluate_done(a_task(), forge=forge, change=ref, checks=["change_exists", "approvals"],
                                approvals=1, needed=1)
    assert state.holds and forge.asked == [ref]
    assert state.checks["change_exists"].detail == "2 commit(s) ahead of main"
    empty = await evaluate_done(a_task(), forge=FakeForge(None), change=ref, checks=["change_exists"],
                                approvals=0, needed=0)
    assert not empty.holds and empty.failing


async def test_task_routes_dispatch_once_per_task_version() -> None:
    calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    async def dispatch(event_type: str, context: dict[str, Any], **how: Any) -> object | None:
        calls.append((event_type, context, how))
        return "ran"

    routes = TaskRoutes(dispatch)
    task = a_task()
    assert routes.dispatch(task, "task.failed", {"why": "exit 1"})
    assert not routes.dispatch(task, "task.failed")  # one run at a time
    await asyncio.gather(*routes.runs.tasks)
    assert not routes.dispatch(task, "task.failed")  # the task has not moved since
    assert routes.dispatch(a_task(version=2), "task.failed")  # it moved: dispatched again
    await asyncio.gather(*routes.runs.tasks)
    assert [c[0] for c in calls] == ["task.failed", "task.failed"]
    assert calls[0][1] == {"task_id": "t-1", "status": "running", "why": "exit 1"}
    assert calls[0][2] == {"operator_id": "op", "trace_id": None}


async def test_task_routes_look_again_when_no_route_applied() -> None:
    async def no_route(event_type: str, context: dict[str, Any], **how: Any) -> object | None:
        return None

    routes = TaskRoutes(no_route, recheck_s=0.0)
    assert routes.dispatch(a_task(), "task.pr_created")
    await asyncio.gather(*routes.runs.tasks)
    assert routes.dispatch(a_task(), "task.pr_created")  # no route ran: the cache may have changed
    await asyncio.gather(*routes.runs.tasks)


class WaitingRuntime(FakeRuntime):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(lines)
        self.output_at = 1.0

    async def last_output_at(self, task_id: str) -> float | None:
        return self.output_at


async def test_attention_flags_an_agent_waiting_for_input_and_notifies_once_per_wait() -> None:
    from fleet_tui.engine.watch.attention import Attention
    from fleet_tui.infra.agents import builtin_profiles

    place = FakeWorkplace([])
    place.runtime = WaitingRuntime(["working", "Continue? [y/N]"])
    patched: list[Any] = []
    notified: list[tuple[str, str]] = []

    async def patch(task: TaskRecord, change: Any) -> TaskRecord:
        patched.append(change.needs_input)
        return task.model_copy(update={"needs_input": change.needs_input})

    async def notify(task: TaskRecord, kind: str, summary: str, *, dedup_key: str | None = None) -> None:
        notified.append((kind, dedup_key or ""))

    async def audit(task: TaskRecord, action: str, detail: dict[str, Any]) -> None:
        raise AssertionError("the demo profile does not answer by itself")

    async def no_resume(task: TaskRecord, worktree: Path, *, prompt: str) -> Any:
        raise AssertionError("not asked to resume")

    attention = Attention(profiles={"demo": builtin_profiles()["demo"]}, place=place, patch=patch, notify=notify,
                          audit=audit, plan_resume=no_resume)
    task = a_task().model_copy(update={"agent": "demo"})
    task = await attention.check(task)
    assert task.needs_input and patched == [True]
    assert notified == [("needs_input", "needs_input:t-1:1.000")]
    assert (await attention.check(task)).needs_input and len(notified) == 1  # same output: not read again


def test_the_conductor_satisfies_the_ports_the_services_take(tmp_path: Path) -> None:
    """The composition root passes the conductor (or a part) where a service asks for a
    port: mypy (strict) checks that it has every member the port names, with compatible types."""
    import subprocess
    import sys

    snippet = tmp_path / "conductor_ports.py"
    snippet.write_text(
        "from fleet_tui.engine.conductor import Conductor\n"
        "from fleet_tui.engine.parts import EngineParts\n"
        "from fleet_tui.engine.ports import PromptInputs, RoutingInputs, Workplace\n\n\n"
        "def ports(c: Conductor, p: EngineParts) -> tuple[Workplace, RoutingInputs, PromptInputs]:\n"
        "    return c, p.agents, p.prompting\n\n\n"
        "def not_a_port(c: Conductor) -> int:\n    return c  # the check must see this one\n")
    out = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-error-summary",
                          "--cache-dir", str(tmp_path / "cache"), str(snippet)],
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    errors = [line for line in out.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and 'expected "int"' in errors[0], out.stdout
