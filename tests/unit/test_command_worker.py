"""The command worker on small fakes of its ports (engine/ports.py): a queue, the operator
actions, the task reads and a runtime. No database, no conductor."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fleet_tui.domain.commands import INTERNAL_ERROR, CommandStatus, CommandVerb
from fleet_tui.domain.errors import NotFoundError, TaskLiveError
from fleet_tui.domain.models import Operator, TaskRecord, Tier
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.workers.command_worker import CommandWorker, Executor, execute
from fleet_tui.store.commands import Command

OP = Operator(id="ann", tier=Tier.BUILDER)


def a_command(verb: CommandVerb, *, id: int = 1, task_id: str | None = "t-1", attempts: int = 1,
              args: dict[str, Any] | None = None) -> Command:
    return Command(id=id, operator=OP, task_id=task_id, verb=verb, args=args or {}, status=CommandStatus.RUNNING,
                   result=None, error=None, error_kind=None, claimed_by="c-1", attempts=attempts,
                   created_at=datetime.now(UTC), finished_at=None)


def a_task(status: TaskStatus) -> TaskRecord:
    now = datetime.now(UTC)
    return TaskRecord(id="t-1", operator_id=OP.id, status=status, version=1, description="fix it",
                      repo="/repo", base_branch="main", created_at=now, updated_at=now)


class FakeQueue:
    def __init__(self, *commands: Command) -> None:
        self.pending = list(commands)
        self.finished: dict[int, dict[str, Any]] = {}
        self.limits: list[int] = []

    async def claim(self, *, ttl_s: float, limit: int) -> list[Command]:
        self.limits.append(limit)
        taken, self.pending = self.pending[:limit], self.pending[limit:]
        return taken

    async def renew(self, ids: list[int], ttl_s: float) -> int:
        return len(ids)

    async def finish(self, command_id: int, *, result: dict[str, Any] | None = None,
                     error: str | None = None, error_kind: str | None = None) -> bool:
        self.finished[command_id] = {"result": result, "error": error, "error_kind": error_kind}
        return True

    async def delete_finished_before(self, before: datetime) -> int:
        return 0


class FakeActions:
    """Records each action; stop answers a cancelled task, merge refuses a live one."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.gate: asyncio.Event | None = None  # when set, delete waits for it

    async def spawn(self, operator: Operator, request: Any) -> Any:
        raise AssertionError("not in these tests")

    async def stop(self, operator: Operator, task_id: str) -> TaskRecord:
        self.calls.append(("stop", task_id))
        return a_task(TaskStatus.CANCELLED)

    async def retry(self, operator: Operator, task_id: str) -> TaskRecord:
        self.calls.append(("retry", task_id))
        return a_task(TaskStatus.PROPOSED)

    async def merge(self, operator: Operator, task_id: str) -> TaskRecord:
        self.calls.append(("merge", task_id))
        raise TaskLiveError(f"task {task_id} is still running")

    async def delete(self, operator: Operator, task_id: str) -> None:
        self.calls.append(("delete", task_id))
        if self.gate is not None:
            await self.gate.wait()

    async def diff(self, operator: Operator, task_id: str) -> str:
        self.calls.append(("diff", task_id))
        raise RuntimeError("a bug inside the conductor")

    async def logs_from(self, operator: Operator, task_id: str, cursor: int | None,
                        max_lines: int = 200) -> tuple[list[str], int]:
        self.calls.append(("logs", task_id))
        return ["one", "two", "three"][:max_lines], 3


class FakeTasks:
    def __init__(self, task: TaskRecord | None) -> None:
        self.task = task

    async def get(self, task_id: str, *, operator: Operator) -> TaskRecord:
        if self.task is None:
            raise NotFoundError("task", task_id)
        return self.task


class FakeRuntime:
    def __init__(self) -> None:
        self.killed: list[str] = []

    async def kill(self, task_id: str) -> None:
        self.killed.append(task_id)


def an_executor(task: TaskRecord | None = None) -> tuple[Executor, FakeActions, FakeRuntime]:
    actions, runtime = FakeActions(), FakeRuntime()
    return Executor(actions=actions, tasks=FakeTasks(task), runtime_for=lambda kind: runtime), actions, runtime  # type: ignore[arg-type,return-value]


def a_worker(queue: FakeQueue, executor: Executor, concurrency: int = 8) -> CommandWorker:
    return CommandWorker(queue=queue, executor=executor, conductor_id="c-1", ttl_s=30.0, concurrency=concurrency)


async def test_a_claimed_command_runs_its_action_and_its_outcome_is_recorded() -> None:
    queue = FakeQueue(a_command(CommandVerb.STOP, id=1), a_command(CommandVerb.MERGE, id=2),
                      a_command(CommandVerb.DIFF, id=3))
    executor, actions, _ = an_executor()
    worker = a_worker(queue, executor)
    assert await worker.run_once() == 3
    await worker.idle()
    assert sorted(actions.calls) == [("diff", "t-1"), ("merge", "t-1"), ("stop", "t-1")]
    assert queue.finished[1]["result"]["task"]["status"] == "cancelled"
    assert queue.finished[2]["error_kind"] == "TaskLiveError" and "still running" in queue.finished[2]["error"]
    # a bug is not shown to the observer: the log has it
    assert queue.finished[3]["error_kind"] == INTERNAL_ERROR and "internal error" in queue.finished[3]["error"]
    assert (worker.stats.claimed, worker.stats.done, worker.stats.failed) == (3, 1, 2)


async def test_the_worker_claims_no_more_than_its_free_slots() -> None:
    queue = FakeQueue(*(a_command(CommandVerb.DELETE, id=i) for i in range(1, 5)))
    executor, actions, _ = an_executor()
    actions.gate = asyncio.Event()  # the deletes wait: their slots stay taken
    worker = a_worker(queue, executor, concurrency=3)
    assert await worker.run_once() == 3
    assert await worker.run_once() == 0
    assert queue.limits == [3, 0]
    actions.gate.set()
    await worker.idle()
    assert await worker.run_once() == 1
    await worker.idle()
    assert sorted(queue.finished) == [1, 2, 3, 4]
    await worker.stop()


async def test_a_retaken_stop_whose_task_is_cancelled_only_kills_the_agent() -> None:
    executor, actions, runtime = an_executor(a_task(TaskStatus.CANCELLED))
    result = await execute(executor, a_command(CommandVerb.STOP, attempts=2))
    assert result["task"]["status"] == "cancelled"
    assert actions.calls == [] and runtime.killed == ["t-1"]


async def test_a_retaken_delete_of_a_task_already_gone_is_done() -> None:
    executor, actions, _ = an_executor(None)
    assert await execute(executor, a_command(CommandVerb.DELETE, attempts=2)) == {"deleted": "t-1"}
    assert actions.calls == []


async def test_a_first_delete_and_a_logs_read_go_to_the_actions() -> None:
    executor, actions, _ = an_executor(None)
    assert await execute(executor, a_command(CommandVerb.DELETE)) == {"deleted": "t-1"}
    logs = await execute(executor, a_command(CommandVerb.LOGS, args={"lines": 2}))
    assert logs == {"lines": ["one", "two"], "truncated": False, "cursor": 3}
    assert actions.calls == [("delete", "t-1"), ("logs", "t-1")]
