"""The conductor: one async method per operator action. Faces (UI, CLI, API) call only
this; it drives the governor, the spawn saga, the runtimes and the forge."""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence

from fleet_tui.config import Settings
from fleet_tui.domain.commands import log_cursor
from fleet_tui.domain.errors import (
    NotFoundError,
    PermissionDeniedError,
    SpawnDeniedError,
    StaleVersionError,
    TaskLiveError,
    ValidationFailed,
)
from fleet_tui.domain.models import (
    SYSTEM,
    Lease,
    Operator,
    RuntimeKind,
    SpawnRequest,
    SpawnResult,
    StatusSummary,
    TaskDetail,
    TaskPatch,
    TaskQuery,
    TaskRecord,
)
from fleet_tui.domain.status import LIVE_STATUSES, TERMINAL_STATUSES, TaskStatus
from fleet_tui.engine.choice import preferences
from fleet_tui.engine.choice.agent_choice import demo_notice
from fleet_tui.engine.choice.agents_report import AgentWarnings
from fleet_tui.engine.spawn.backpressure import RateLimiter, SpawnQueue
from fleet_tui.engine.kit.bus import EventBus, Notice, TaskChanged
from fleet_tui.engine.kit.supervisor import Supervisor
from fleet_tui.engine.spawn.governor import Governor
from fleet_tui.engine.ledger.leases import SpawnOwnership, hand_back, held_lease, holding, new_conductor_id
from fleet_tui.engine.ops.metrics import Telemetry
from fleet_tui.engine.parts import EngineParts
from fleet_tui.engine.spawn.prompting import plan_for_task, prompt_lookups
from fleet_tui.engine.spawn.request_checks import (
    derive_idempotency_key,
    require_spawner,
    resolve_repo_and_base,
    spawn_field_errors,
)
from fleet_tui.engine.spawn.spawner import SpawnPlan, Spawner, opens_execution
from fleet_tui.engine.ledger.task_ledger import OnTerminal
from fleet_tui.engine.ledger.tracing import current_trace_id, trace
from fleet_tui.infra.git import TaskCheckout
from fleet_tui.infra.protocols import ChangeRef, Runtime

if TYPE_CHECKING:  # the router is built on first use (Conductor.router); the ops modules at their verb
    from fleet_tui.engine.choice.routing import RouteDecision
    from fleet_tui.store.tasks import Admission
    from fleet_tui.engine.events.runner import RunResult
    from fleet_tui.engine.events.service import RouterService
    from fleet_tui.engine.observer.feed import ChangeFeed
    from fleet_tui.engine.watch.monitor import Monitor
    from fleet_tui.engine.ops.invariants import InvariantResult
    from fleet_tui.engine.ops.sweep import SweepReport

log = logging.getLogger(__name__)

STOPPABLE = LIVE_STATUSES
RETRYABLE = frozenset({TaskStatus.FAILED, TaskStatus.REJECTED})


def merge_next_step(task: TaskRecord, detail: str, conflict_files: list[str]) -> str:
    """What the operator can do about a merge that did not happen (the task stays ready)."""
    if not conflict_files:
        return f"merge of task {task.id} into {task.base_branch} failed: {detail}; the task stays ready"
    files = ", ".join(conflict_files[:5]) + (f" and {len(conflict_files) - 5} more" if len(conflict_files) > 5 else "")
    where = f" in {task.worktree_path}" if task.worktree_path else ""
    return (f"merge of task {task.id} into {task.base_branch} conflicts in {files}; it was aborted and the "
            f"task stays ready. Next: rebase {task.branch} onto {task.base_branch}{where}, resolve, commit "
            f"and merge again; or stop the task and spawn it again on the new {task.base_branch}")


class Conductor:
    def __init__(self, parts: EngineParts) -> None:
        self.parts = parts
        self.settings: Settings = parts.settings
        self.registry = parts.registry  # reads; every write is the ledger's
        self.ledger = parts.ledger
        self.bus: EventBus = parts.bus
        self.governor = Governor(self.ledger, parts.settings.governor)
        self.spawner = Spawner(
            worktrees=parts.worktrees, runtime_for=self.runtime_for, move=self.ledger.move,
            audit=self.ledger.audit_many, reread=self._reread, opens_execution=opens_execution,
        )
        self.monitor: Monitor | None = None  # set by start()
        # makes the monitor from this conductor's narrow collaborators: set by the composition
        # root (session.build_conductor), so the monitor never holds the conductor
        self.make_monitor: Callable[[], Monitor] | None = None
        # makes the event router (with the steps' narrow collaborators) the same way, on first use
        self.make_router: Callable[[], RouterService] | None = None
        self.telemetry = Telemetry()  # this process's histograms, for the metrics exposition
        self.conductor_id = new_conductor_id()
        self.queue = SpawnQueue(parts.db)
        self.rate_limiter = RateLimiter(parts.db, limit=parts.settings.governor.rate_limit,
                                        per_s=parts.settings.governor.rate_window_s)
        self._spawning: set[str] = set()  # tasks whose spawn saga runs in this process
        self._router: RouterService | None = None
        self.supervisor = Supervisor("conductor")  # its background work, e.g. notification routes
        self.workers: Any = None  # outbox relay + notification worker, when a face starts them
        self.agent_warnings = AgentWarnings(parts.settings)
        # the ledger's hooks, called with (task, its terminal status, reason) once a move to a
        # terminal status is committed; the composition root registers the event router's
        self.on_terminal: list[OnTerminal] = self.ledger.on_terminal

    def background(self, work: Coroutine[Any, Any, object], *, name: str) -> None:
        """Run a coroutine beside the caller; errors are logged, never lost silently."""
        self.supervisor.start(work, name=name)

    @property
    def router(self) -> RouterService:
        """The event router over this conductor (policies as data), built on first use."""
        if self._router is None:
            if self.make_router is None:
                raise RuntimeError("a conductor is made by engine.session.build_conductor, which wires its router")
            self._router = self.make_router()
        return self._router

    # --- plumbing shared with the monitor -------------------------------------------

    def runtime_for(self, kind: RuntimeKind | str) -> Runtime:
        return self.parts.places.runtime_for(kind)

    async def move(self, task: TaskRecord, target: TaskStatus, patch: TaskPatch | None = None,
                   *, actor: str, reason: str | None = None, operator: Operator | None = None,
                   notes: Sequence[tuple[str, dict[str, Any]]] = (), within: Any = None) -> TaskRecord:
        """The ledger's move (TaskLedger.move): one guarded transition, then what follows it."""
        return await self.ledger.move(task, target, patch, actor=actor, reason=reason, operator=operator,
                                      notes=notes, within=within)

    async def patch(self, task: TaskRecord, patch: TaskPatch) -> TaskRecord:
        return await self.ledger.patch(task, patch)

    async def audit(self, task: TaskRecord, action: str, detail: dict[str, Any]) -> None:
        await self.ledger.audit(task, action, detail)

    async def _reread(self, task_id: str) -> TaskRecord:
        return await self.registry.get(task_id, operator=SYSTEM)

    async def _owned(self, operator: Operator, task_id: str) -> TaskRecord:
        """The task, if the operator may act on it. RLS already hides others' rows."""
        task = await self.registry.get(task_id, operator=operator)
        if task.operator_id != operator.id and not operator.is_admin:
            raise NotFoundError("task", task_id)
        return task

    # --- operator actions ---------------------------------------------------------------

    async def spawn(self, operator: Operator, request: SpawnRequest) -> SpawnResult:
        """Admit and launch; over fleet capacity (or behind requests already waiting) the
        request queues (priority, then age) and a monitor admits it when room frees."""
        with trace() as trace_id:
            require_spawner(operator)
            asked_at = time.monotonic()  # the spawn lease, if granted, lasts from no earlier
            admission, decision = await self._admit(operator, request, trace_id=trace_id, rate=self.rate_limiter)
            if admission.outcome in ("queued", "merged"):
                return SpawnResult(task=None, created=False, queued=True, queue_id=int(admission.ref or 0))
            assert admission.task is not None, admission
            if admission.outcome != "created":
                return SpawnResult(task=admission.task, created=False)
            task = await self._launch_admitted(admission.task, actor=operator.id, granted_at=asked_at)
            return SpawnResult(task=task, created=True, notice=demo_notice(self.parts.agents, decision))

    async def admit_queued(self, entry: Any, operator: Operator) -> tuple[str, TaskRecord | None]:
        """Admit one queued request (the entry turns 'admitted' in the transaction that makes
        its task) and start its saga beside the caller: (outcome, task). Outcomes as
        Governor.decide; 'denied' leaves the entry queued behind its operator's tier limit."""
        require_spawner(operator)  # its tier may have dropped since it queued
        with trace(entry.trace_id):
            asked_at = time.monotonic()
            try:
                admission, decision = await self._admit(operator, entry.request, queue_id=entry.id,
                                                        trace_id=entry.trace_id or current_trace_id())
            except SpawnDeniedError:
                return "denied", None
            if admission.outcome == "created" and admission.task is not None:
                task = admission.task
                self._spawning.add(task.id)  # owned from now: our monitor leaves it alone
                self.background(self._launch_admitted(task, actor=operator.id, granted_at=asked_at),
                                name=f"spawn-{task.id}")
            return admission.outcome, admission.task

    async def _admit(self, operator: Operator, request: SpawnRequest, *, trace_id: str | None,
                     queue_id: int | None = None, rate: RateLimiter | None = None) -> tuple[Admission, RouteDecision]:
        """Validate, route, then the governor's one decision (the task with its spawn lease,
        owned by this conductor, or a queue entry). rate: a fresh request is taken from it in
        the routing reads' transaction (a commit less than a transaction of its own)."""
        repo, base = await resolve_repo_and_base(self.parts.worktrees, request.repo, request.base_branch)
        if request.branch:
            self.parts.worktrees.validate_branch(request.branch)
        runtime = request.runtime or self.settings.runtime.default
        decision = await self.parts.agents.route(operator, request, rate=rate)
        await self.runtime_for(runtime).check_available(decision.agent)  # refused before anything is made
        key = request.idempotency_key or derive_idempotency_key(operator.id, repo, request.description)
        route = decision.to_dict()

        def spawning(task_id: str) -> dict[str, Any]:  # the saga's first move, made by the admission
            fields = self.spawner.spawning_patch(task_id, request.branch, {"route": route}).model_dump(
                mode="json", exclude_unset=True)
            return {**fields, "fields": sorted(fields), "notes": [{"action": "route_chosen", "detail": route}]}

        admission = await self.governor.decide(
            operator, key=key, queue_id=queue_id, may_queue=queue_id is None,
            request=request.model_dump(mode="json"), owner=self.conductor_id,
            lease_s=self.settings.monitor.lease_ttl_s,
            description=request.description, repo=str(repo), base_branch=base,
            task_type=request.task_type, agent=decision.agent, model=decision.model,
            runtime=str(runtime), priority=request.priority,
            max_retries=request.max_retries if request.max_retries is not None
            else self.settings.retry.max_retries,
            branch=request.branch, trace_id=trace_id, spawn=spawning,
        )
        return admission, decision

    async def _launch_admitted(self, task: TaskRecord, *, actor: str, granted_at: float) -> TaskRecord:
        self._spawning.add(task.id)
        try:
            self.bus.publish(TaskChanged(task))
            return await self.launch(task, actor=actor, lease=Lease(owner=self.conductor_id, epoch=1),
                                     lease_granted_at=granted_at, already_spawning=True)
        finally:
            self._spawning.discard(task.id)

    def spawning_here(self, task_id: str) -> bool:
        """A spawn saga of this process owns the task right now."""
        return task_id in self._spawning

    async def launch(self, task: TaskRecord, *, actor: str, metadata: dict[str, Any] | None = None,
                     lease: Lease | None = None,
                     plan_for: Callable[[TaskRecord, Path], Awaitable[SpawnPlan]] | None = None,
                     lease_granted_at: float | None = None,
                     notes: Sequence[tuple[str, dict[str, Any]]] = (), already_spawning: bool = False) -> TaskRecord:
        """Run the spawn saga for a proposed or retrying task, owning its lease (the given
        one, granted at time.monotonic() lease_granted_at when known, else the one the caller
        holds) until the task is running. plan_for(task, path):
        the agent's plan (default: a new attempt's, plan_for_task). notes: audit rows
        (action, detail) written with the move to spawning. already_spawning: the admission
        made that move (sql/014), with the route as metadata and note."""
        lease = lease or held_lease.get()
        lookups: list[asyncio.Task[Any]] = []

        def begun() -> None:  # the default plan's look-ups need no worktree: they run beside its making
            if plan_for is None:
                lookups.append(asyncio.create_task(prompt_lookups(self.parts.prompting, task)))

        async def plan(t: TaskRecord, path: Path) -> SpawnPlan:
            if plan_for is None:
                return await plan_for_task(self.parts.prompting, t, path, await lookups[0] if lookups else None)
            return await plan_for(t, path)

        try:
            with trace(task.trace_id), holding(lease):
                if lease is None:
                    launched = await self.spawner.launch(task, plan, actor=actor, metadata=metadata, notes=notes,
                                                         begun=begun, already_spawning=already_spawning)
                else:
                    async with SpawnOwnership(self.parts.db, task.id, lease, self.settings.monitor.lease_ttl_s,
                                              extended_at=lease_granted_at) as ownership:
                        launched = await self.spawner.launch(task, plan, actor=actor, metadata=metadata,
                                                             ownership=ownership, notes=notes, begun=begun,
                                                             already_spawning=already_spawning)
        finally:
            for unused in lookups:  # unused when the saga stopped before its plan
                unused.cancel()
            await asyncio.gather(*lookups, return_exceptions=True)
        return launched

    async def stop(self, operator: Operator, task_id: str) -> TaskRecord:
        """Cancel first, then kill: once cancelled, no monitor will see the dead agent as a
        failure to retry."""
        task = await self._owned(operator, task_id)
        for _ in range(5):  # the monitor may move the task at the same moment
            if task.status not in STOPPABLE:
                raise TaskLiveError(f"task {task_id} is {task.status}; only live tasks can be stopped")
            try:
                cancelled = await self.move(task, TaskStatus.CANCELLED, actor=operator.id,
                                            reason="stopped by operator", operator=operator)
                break
            except StaleVersionError:
                task = await self._owned(operator, task_id)
        else:
            raise StaleVersionError(task_id, task.version)
        await self.runtime_for(cancelled.runtime).kill(cancelled.id)
        return cancelled

    async def retry(self, operator: Operator, task_id: str, *, allow: list[str] | None = None) -> TaskRecord:
        """Retry a failed or rejected task now, within its retry budget. `allow`: permission
        rules granted to the task from now on (its next attempts and resumes). A task that
        waited for a person (needs_input) spends no retry: its run was refused, not failed."""
        from fleet_tui.domain.asks import check_grants
        from fleet_tui.engine.spawn.prompting import GRANTED_KEY, granted_rules
        from fleet_tui.infra.agents import takes_grants

        rules = check_grants(list(allow or []))
        task = await self._owned(operator, task_id)
        if task.status not in RETRYABLE:
            raise TaskLiveError(f"task {task_id} is {task.status}; only failed or rejected tasks can be retried")
        if rules and not takes_grants(self.parts.profile(task.agent)):
            raise ValidationFailed("allow", f"agent {task.agent} takes no granted permissions")
        patch = TaskPatch(needs_input=False)
        if rules:
            granted = granted_rules(task) + [r for r in rules if r not in granted_rules(task)]
            patch.metadata = {GRANTED_KEY: granted}
            await self.audit(task, "permission_granted", {"rules": rules, "by": operator.id})
        counted: TaskRecord | None
        if task.needs_input:
            counted = task
        else:
            counted = await self.ledger.record_failure(task, operator=operator)
            if counted is None:
                raise PermissionDeniedError(
                    f"task {task_id} has used its retry budget ({task.max_retries}); spawn a new task")
        task = await self.move(counted, TaskStatus.RETRYING, patch, actor=operator.id,
                               reason="retry requested by operator" + (f", allowing {', '.join(rules)}" if rules else ""),
                               operator=operator)
        return await self.launch(task, actor=operator.id)

    async def answer(self, operator: Operator, task_id: str, text: str) -> TaskRecord:
        """Answer an agent that waits for a person: its session resumes with `text` as the
        prompt (the profile's resume command), spending no retry."""
        from fleet_tui.domain.asks import check_answer
        from fleet_tui.engine.spawn.prompting import resume_plan

        text = check_answer(text)
        task = await self._owned(operator, task_id)
        if task.status not in RETRYABLE or not task.needs_input:
            raise TaskLiveError(f"task {task_id} is {task.status} and waits for no answer")
        if not self.parts.profile(task.agent).resume_command:
            raise ValidationFailed("text", f"agent {task.agent} cannot resume a session; retry it instead")
        await self.audit(task, "answered", {"by": operator.id, "chars": len(text)})
        task = await self.move(task, TaskStatus.RETRYING, TaskPatch(needs_input=False), actor=operator.id,
                               reason="answered by operator", operator=operator)
        return await self.launch(task, actor=operator.id,
                                 plan_for=partial(resume_plan, self.parts.prompting, prompt=text))

    async def delete(self, operator: Operator, task_id: str) -> None:
        task = await self._owned(operator, task_id)
        if task.status not in TERMINAL_STATUSES:
            raise TaskLiveError(f"task {task_id} is {task.status}; stop it before deleting it")
        if task.worktree_path and task.branch:  # a snapshot first when the branch has unpushed work
            await self.parts.worktrees.cleanup(
                Path(task.repo), path=Path(task.worktree_path), branch=task.branch, base=task.base_branch)
        # session, log pipe, log; an exited container, its branch link settled (infra/ref_spool.py)
        await self.runtime_for(task.runtime).forget(task.id)
        await self.ledger.delete(task, operator)

    async def merge(self, operator: Operator, task_id: str) -> TaskRecord:
        task = await self._owned(operator, task_id)
        if task.status != TaskStatus.READY:
            raise TaskLiveError(f"task {task_id} is {task.status}; only ready tasks can be merged")
        result = await self.parts.forge.merge(self.change_ref(task))
        if not result.merged:
            note = merge_next_step(task, result.detail, result.conflict_files)
            await self.audit(task, "merge_failed", {"detail": result.detail, "conflict_files": result.conflict_files,
                                                    "next": note})
            await self.ledger.patch(task, TaskPatch(metadata={**task.metadata, "merge_blocked": {
                "detail": result.detail, "conflict_files": result.conflict_files, "next": note}}))
            self.bus.publish(Notice("merge_failed", task.id, note))
            raise TaskLiveError(note)
        return await self.move(task, TaskStatus.MERGED, actor=operator.id, reason="merged", operator=operator)

    async def status(self, operator: Operator, *, all_operators: bool = False,
                     limit: int = 500) -> StatusSummary:
        if all_operators and not operator.is_admin:
            raise PermissionDeniedError("all=true needs an admin operator")
        query = TaskQuery(operator_id=None if all_operators else operator.id, limit=limit)
        tasks = await self.registry.query(query, operator=operator)
        counts: dict[str, int] = {}
        for task in tasks:
            counts[task.status] = counts.get(task.status, 0) + 1
        live = await self.registry.count_active(operator.id)
        self.governor.note_live(operator.id, live)
        fleet_live = await self.registry.count_all_active()
        return StatusSummary(
            operator_id=operator.id, tier=operator.tier, counts=counts, live=live,
            limit=self.governor.limit_for(operator.tier), fleet_live=fleet_live,
            fleet_capacity=self.governor.fleet_capacity, tasks=tasks,
        )

    async def detail(self, operator: Operator, task_id: str) -> TaskDetail:
        task = await self._owned(operator, task_id)
        from fleet_tui.store import audit as audit_store
        from fleet_tui.store import executions as execution_store

        audit = [entry.__dict__ for entry in await audit_store.list_for_task(self.parts.db, task.id, operator=operator)]
        executions = await execution_store.list_for_task(self.parts.db, task.id, operator=operator)
        return TaskDetail(task=task, audit=audit, executions=executions)

    async def logs(self, operator: Operator, task_id: str, n: int = 200) -> list[str]:
        task = await self._owned(operator, task_id)
        return await self.runtime_for(task.runtime).tail(task.id, n)

    async def logs_from(self, operator: Operator, task_id: str, cursor: int | None,
                        max_lines: int = 200) -> tuple[list[str], int]:
        """Up to max_lines complete lines after `cursor` (None: the last max_lines) and the
        cursor just after them: a follower elsewhere reads on from there, losing nothing."""
        if cursor is not None:
            log_cursor(cursor, "cursor")
        task = await self._owned(operator, task_id)
        return await self.runtime_for(task.runtime).read_from(task.id, cursor, max_lines)

    async def follow_logs(self, operator: Operator, task_id: str, *, after: int | None = None) -> AsyncIterator[str]:
        """The agent's output as it is written, from the start or after a cursor logs_from
        returned (then no line comes twice); ends once the agent has exited."""
        task = await self._owned(operator, task_id)
        async for line in self.runtime_for(task.runtime).stream(task.id, after=after):
            yield line

    async def output_host(self, operator: Operator, task_id: str) -> str | None:
        """The host of the conductor holding the task when it is not this host: the agent's
        output is written there, not under this host's data directory. None otherwise."""
        import socket

        from fleet_tui.store import leases as lease_store

        await self._owned(operator, task_id)
        host = await lease_store.holder_host(self.parts.db, task_id)
        return host if host and host != socket.gethostname() else None

    async def attach_elsewhere(self, task: TaskRecord) -> str | None:
        return None  # this conductor's agents run on this host: attach from here

    async def diff(self, operator: Operator, task_id: str) -> str:
        task = await self._owned(operator, task_id)
        if not task.branch:
            return ""
        return await self.parts.forge.diff(self.change_ref(task))

    async def fleet_health(self) -> dict[str, Any]:
        """The fleet's figures (outbox lag, DLQ depth, queue depth, open breakers, monitor)
        as engine.ops.metrics collects them, and agent_warnings (installed CLIs outside their
        proven range, probed beside the engine): what the faces' health panels show."""
        from fleet_tui.engine.ops.metrics import collect

        figures: dict[str, Any] = dict(await collect(self.parts.db, process=self, breakers=self.router.breakers))
        warnings = self.agent_warnings.current()
        if warnings:
            figures["agent_warnings"] = warnings
        return figures

    async def sweep(self) -> SweepReport:
        """Remove finished tasks' worktrees past retention (snapshot rules apply); report disk."""
        from fleet_tui.engine.ops.sweep import sweep_worktrees

        return await sweep_worktrees(db=self.parts.db, place=self.parts.places, worktrees=self.parts.worktrees,
                                     patch=self.ledger.patch,
                                     retention_hours=self.settings.worktree.retention_hours)

    async def invariants(self) -> list[InvariantResult]:
        """INV-014..INV-018, each with satisfied + detail."""
        from fleet_tui.engine.ops.invariants import check_all

        return await check_all(db=self.parts.db, limit_for=self.governor.limit_for, runtime_for=self.runtime_for,
                               runtimes={RuntimeKind.TMUX, *self.parts.runtimes.built})

    def checkout(self, task: TaskRecord) -> TaskCheckout:
        """The task's worktree, repository and branch as its record says (TaskPlaces)."""
        return self.parts.places.checkout(task)

    def change_ref(self, task: TaskRecord) -> ChangeRef:
        return self.parts.places.change_ref(task)

    # --- the operator's preferences and policies (`prefs`, `routes`, `dlq`) -----------------

    async def preferences(self, operator: Operator) -> dict[str, bool | None]:
        """Every preference key with the operator's own value (None: unset, the settings
        file decides)."""
        return await preferences.list_for(self.parts.db, operator)

    async def set_preference(self, operator: Operator, key: str, value: bool | None) -> None:
        """Set the operator's own value of key (None removes it); every conductor reads it."""
        await preferences.set_for(self.parts.db, operator, key, value)

    def _events(self) -> RouterService:
        return self.router

    async def routes(self, operator: Operator, kind: str) -> list[dict[str, Any]]:
        """The platform's defaults and the operator's overrides of one kind (route, sequence,
        handoff)."""
        return await self._events().admin.list(operator, kind)

    async def route(self, operator: Operator, kind: str, key: str) -> dict[str, Any]:
        """One item's effective value and where it comes from."""
        return await self._events().admin.show(operator, kind, key)

    async def save_route(self, operator: Operator, kind: str, item: dict[str, Any], *,
                         platform: bool = False) -> dict[str, Any]:
        """Create or replace an override (platform: the default, admins only), validated."""
        return await self._events().admin.upsert(operator, kind, item, platform=platform)

    async def delete_route(self, operator: Operator, kind: str, key: str, *, platform: bool = False) -> None:
        await self._events().admin.delete(operator, kind, key, platform=platform)

    async def breaker_states(self) -> list[dict[str, Any]]:
        """The fleet-wide circuit breakers of the router's adapters."""
        return await self._events().breaker_states()

    async def dead_letters(self, operator: Operator, *, include_closed: bool = False) -> list[dict[str, Any]]:
        """The operator's dead letters (admins: all), newest first; open ones unless asked."""
        return await self._events().dlq.list(operator, include_closed=include_closed)

    async def retry_dead_letter(self, operator: Operator, letter_id: int) -> RunResult:
        return await self._events().dlq.retry(operator, letter_id)

    async def discard_dead_letter(self, operator: Operator, letter_id: int) -> None:
        await self._events().dlq.discard(operator, letter_id)

    # --- lifecycle ------------------------------------------------------------------------

    async def change_feed(self, operator: Operator) -> ChangeFeed:
        """A started engine.observer.feed.ChangeFeed: the changes other processes make to the fleet
        (as `operator` may see them) published on this conductor's bus; the caller closes it."""
        from fleet_tui.engine.observer.feed import ChangeFeed

        feed = ChangeFeed(self.parts.db, self.bus, operator=operator)
        await feed.start()
        return feed

    async def start(self, *, monitor: bool = True) -> None:
        if self.make_monitor is None:
            raise RuntimeError("a conductor is made by engine.session.build_conductor, which wires its monitor")
        self.monitor = self.make_monitor()
        fixed = await self.registry.recount_live()
        if fixed:  # the trigger keeps them; a restore or a hand edit may not have
            log.warning("live task counts of %d operator(s) were off; recounted", fixed)
        await self.monitor.reconcile()
        if monitor:
            self.monitor.start()

    async def shutdown(self) -> None:
        """Stop the loops and drain; agents keep running (they outlive the conductor)."""
        self.agent_warnings.close()
        if self.monitor is not None:
            await self.monitor.stop()
        if self.parts.reviews is not None:
            await self.parts.reviews.shutdown()
        await self.supervisor.shutdown(timeout_s=5)  # e.g. notification routes of the last transitions
        if self.monitor is None:  # a one-shot conductor (`fleet-tui spawn`): the monitor's stop
            await hand_back(self.parts.db, self.conductor_id)  # would have handed them back

    # --- validation ----------------------------------------------------------------------

    async def spawn_field_errors(self, request: SpawnRequest) -> dict[str, str]:
        """Every rule of the fleet's that the request breaks, by field (a form shows them all
        at once); nothing is made."""
        return await spawn_field_errors(request, worktrees=self.parts.worktrees,
                                        choose_agent=self.parts.agents.choose)
