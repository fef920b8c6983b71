"""The spawn saga: worktree, agent process, running. Used for first attempts and retries.
Any failure compensates in reverse order (each compensation audited) and leaves the task
failed with the SpawnError code, unless the operator cancelled it meanwhile."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, UTC
from functools import partial
from pathlib import Path
from typing import Any
from collections.abc import Awaitable, Callable, Sequence

from fleet_tui.domain.errors import (
    RUNTIME_UNAVAILABLE,
    LeaseLostError,
    RuntimeUnavailableError,
    SpawnError,
    SpawnErrorCode,
    StaleVersionError,
)
from fleet_tui.domain.models import RuntimeKind, TaskPatch, TaskRecord
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.ledger.leases import SpawnOwnership
from fleet_tui.engine.kit.saga import SagaFailed, SagaStep, run_saga
from fleet_tui.infra.protocols import AgentLaunch, Runtime
from fleet_tui.infra.worktree import WorktreeManager

log = logging.getLogger(__name__)
RUNTIME_WAIT_S = 60.0  # a task whose runtime is down tries again after this, without spending a retry

Move = Callable[..., Awaitable[TaskRecord]]
Audit = Callable[[TaskRecord, list[tuple[str, dict[str, Any]]]], Awaitable[None]]  # rows (action, detail)


@dataclass
class SpawnPlan:
    """What the saga needs beyond the task row: decided by the conductor."""

    argv: list[str]
    prompt: str
    prompt_via: str
    env: dict[str, str]
    context_hash: str | None = None
    stream: str | None = None
    egress: tuple[str, ...] = ()
    notes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # audit rows: (action, detail)


def opens_execution(plan: SpawnPlan) -> Callable[[Any, TaskRecord], Awaitable[None]]:
    """The write that opens the attempt's execution row (with the prompt its plan gave),
    for the transaction of the move to running."""
    from fleet_tui.store import executions

    return partial(executions.open_attempt, prompt=plan.prompt, context_hash=plan.context_hash)


class Spawner:
    def __init__(self, *, worktrees: WorktreeManager, runtime_for: Callable[[RuntimeKind], Runtime],
                 move: Move, audit: Audit, reread: Callable[[str], Awaitable[TaskRecord]],
                 opens_execution: Callable[[SpawnPlan], Callable[[Any, TaskRecord], Awaitable[None]]]) -> None:
        self._worktrees = worktrees
        self._runtime_for = runtime_for
        self._move = move
        self._audit = audit
        self._reread = reread
        self._opens_execution = opens_execution  # the attempt's execution row, opened with `running`

    async def launch(self, task: TaskRecord, plan_for: Callable[[TaskRecord, Path], Awaitable[SpawnPlan]],
                     *, actor: str, metadata: dict[str, Any] | None = None,
                     ownership: SpawnOwnership | None = None,
                     notes: Sequence[tuple[str, dict[str, Any]]] = (),
                     begun: Callable[[], None] | None = None, already_spawning: bool = False) -> TaskRecord:
        """task must be proposed or retrying; returns it running or failed (or as another
        conductor left it, once this one lost the task's lease: nothing is undone then).
        notes: audit rows (action, detail) written with the move to spawning; begun(): called
        once the task is spawning, before the worktree is made (work to run beside it). Each database
        write on the way is folded into a transaction that the spawn needs anyway, or made
        while tmux starts the agent: a commit costs milliseconds. already_spawning: its
        admission made the move to spawning (with spawning_patch, metadata and notes)."""
        # just admitted: no agent ever started
        first_start = task.status == TaskStatus.PROPOSED or already_spawning
        patch = self.spawning_patch(task.id, task.branch, metadata)
        branch, path = str(patch.branch), Path(str(patch.worktree_path))
        flushed: asyncio.Task[bool] | None = None
        if already_spawning:
            if ownership is not None:  # the admission's commit did not wait for the log's flush; a
                # renewal does (and flushes it too): beside the worktree, awaited before the agent starts
                flushed = asyncio.create_task(ownership.renew())
        else:
            try:
                task = await self._move(task, TaskStatus.SPAWNING, patch, actor=actor, notes=notes)
            except LeaseLostError:  # taken over before it began: the new owner spawns it
                log.warning("spawn of %s not begun: its lease was taken over", task.id)
                if notes:  # still said, though the move they came with did not happen
                    await self._audit(task, list(notes))
                return await self._reread(task.id)
        if begun is not None:
            begun()
        try:
            return await self._run(task, plan_for, branch=branch, path=path, actor=actor, ownership=ownership,
                                   first_start=first_start, flushed=flushed)
        finally:
            if flushed is not None and not flushed.done():
                flushed.cancel()
            if flushed is not None:
                await asyncio.gather(flushed, return_exceptions=True)

    def spawning_patch(self, task_id: str, branch: str | None, metadata: dict[str, Any] | None) -> TaskPatch:
        """What the move to spawning writes: the task's branch and worktree path (and metadata)."""
        patch = TaskPatch(branch=branch or f"fleet/{task_id}", worktree_path=str(self._worktrees.resolve_path(task_id)))
        if metadata:
            patch.metadata = metadata
        return patch

    async def _run(self, task: TaskRecord, plan_for: Callable[[TaskRecord, Path], Awaitable[SpawnPlan]], *,
                   branch: str, path: Path, actor: str, ownership: SpawnOwnership | None, first_start: bool,
                   flushed: asyncio.Task[bool] | None) -> TaskRecord:
        runtime = self._runtime_for(task.runtime)
        repo = Path(task.repo)
        reuse = path.exists()  # a retry continues in the attempt's worktree
        state: dict[str, Any] = {}

        def still_ours() -> None:
            if ownership is not None and ownership.lost:
                raise LeaseLostError(task.id)

        async def make_worktree() -> Path:
            still_ours()
            if reuse:  # links as the record says, whatever the last agent wrote
                self._worktrees.repair(self._worktrees.checkout(repo, path, branch))
                return path
            return await self._worktrees.create(repo, task_id=task.id, branch=branch,
                                                base=task.base_branch, repo_checked=True)

        async def undo_worktree() -> None:
            await self._worktrees.remove_created(repo, path, branch, task.base_branch)

        prestart = getattr(runtime, "prestart", None)  # tmux: its session opens beside the worktree

        async def open_session() -> None:
            still_ours()
            assert prestart is not None  # the saga has this step only when the runtime has prestart
            state["early"] = prestart(task.id, path, first_start=first_start)

        async def close_session() -> None:
            if "early" in state:
                await runtime.abandon(state["early"])  # type: ignore[attr-defined]

        async def start_process() -> None:
            plan = await plan_for(task, path)
            ours = flushed if flushed is not None else ownership.confirm() if ownership is not None else None
            if ours is not None and not await ours:  # never start another's agent
                raise LeaseLostError(task.id)
            checkout = self._worktrees.checkout(repo, path, branch)
            launch = AgentLaunch(
                task_id=task.id, workdir=path, argv=plan.argv, prompt=plan.prompt,
                prompt_via=plan.prompt_via,  # type: ignore[arg-type]
                env={**plan.env, "FLEET_TASK_ID": task.id,
                     "FLEET_ATTEMPT": str(task.retry_count + 1)},
                stream=plan.stream, agent=task.agent, egress=plan.egress,
                git_admin=checkout.admin, git_common=checkout.common, git_branch=checkout.branch,
                first_start=first_start, early=state.get("early"),
            )
            state["plan"] = plan
            state["process"] = await runtime.spawn(launch)  # its audit rows go with the move to running

        async def undo_process() -> None:
            await runtime.kill(task.id)

        async def mark_running() -> TaskRecord:
            still_ours()
            proc = state["process"]
            patch = TaskPatch(spawned_at=datetime.now(UTC), exit_code=None)
            if task.runtime == RuntimeKind.DOCKER:
                patch.container_id = proc.ref
            else:
                patch.tmux_session = proc.ref
            return await self._move(task, TaskStatus.RUNNING, patch, actor=actor,
                                    within=self._opens_execution(state["plan"]), notes=state["plan"].notes)

        def unwritten() -> list[tuple[str, dict[str, Any]]]:
            """The plan's audit rows (secrets issued, the prompt) when its agent was started but
            the move to running, which writes them, did not happen: written with the failure."""
            return list(state["plan"].notes) if "process" in state else []

        async def audited(step: str, error: str | None) -> None:
            await self._audit(task, [("compensate", {"step": step, "error": error})])

        steps = [
            SagaStep("runtime", partial(runtime.check_available, task.agent)),  # before anything is made
            *([SagaStep("session", open_session, close_session)] if prestart is not None else []),
            SagaStep("worktree", make_worktree, None if reuse else undo_worktree),
            SagaStep("process", start_process, undo_process),
            SagaStep("running", mark_running),
        ]
        try:
            results = await run_saga(steps, on_compensated=audited,
                                     may_compensate=None if ownership is None else ownership.renew)
        except SagaFailed as failed:
            if failed.disowned:
                log.warning("spawn of %s stopped at %s: its lease was taken over; nothing undone",
                            task.id, failed.step)
                try:
                    await self._audit(task, [*unwritten(), ("spawn_disowned", {"step": failed.step,
                                                                 "error": _scrub(str(failed.cause))})])
                    return await self._reread(task.id)
                except Exception:  # the database away too: the lease's next holder decides
                    return task
            return await self._after_failure(task, failed, actor=actor, notes=unwritten())
        finally:
            if "early" in state and not state["early"].delivered:  # disowned or cancelled: a launcher
                state["early"].let_go()  # still waiting exits, one not yet started never will
                if not state["early"].opened.done():
                    state["early"].opened.cancel()
        running: TaskRecord = results[-1]  # the last step's: the move to running
        return running

    async def _after_failure(self, task: TaskRecord, failed: SagaFailed, *, actor: str,
                             notes: Sequence[tuple[str, dict[str, Any]]] = ()) -> TaskRecord:
        cause = failed.cause
        if isinstance(cause, SpawnError):
            code, message = cause.code, cause.detail
        elif isinstance(cause, StaleVersionError):
            code, message = SpawnErrorCode.PROCESS_FAILED, "task changed during spawn"
        else:
            code = SpawnErrorCode.PROCESS_FAILED if failed.step != "worktree" else SpawnErrorCode.WORKTREE_FAILED
            message = f"{type(cause).__name__}: {cause}"
        current = await self._reread(task.id)
        if current.status != TaskStatus.SPAWNING:
            log.info("spawn of %s ended by %s (%s)", task.id, current.status, code)
            if notes:
                await self._audit(current, list(notes))
            return current  # e.g. cancelled by the operator meanwhile
        context = {"code": str(code), "step": failed.step, "message": _scrub(message),
                   "compensated": failed.compensated}
        reason = str(code)
        if isinstance(cause, RuntimeUnavailableError):  # not the attempt's fault: wait, spend no retry
            reason = RUNTIME_UNAVAILABLE
            context.update(code=reason, message=_scrub(str(cause)), retry_at=(
                datetime.now(UTC) + timedelta(seconds=RUNTIME_WAIT_S)).isoformat())
        try:
            return await self._move(current, TaskStatus.FAILED, TaskPatch(
                failure_reason=reason, failure_context=context), actor=actor, notes=notes)
        except (LeaseLostError, StaleVersionError):  # taken over meanwhile: the new owner decides
            if notes:
                await self._audit(current, list(notes))
            return await self._reread(task.id)


def _scrub(text: str) -> str:
    """Spawn errors may quote paths and commands; never secrets (the env is not in them),
    but keep them short."""
    home = os.path.expanduser("~")
    return text.replace(home, "~")[:2000]
