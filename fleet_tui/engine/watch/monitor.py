"""The monitor: reconcile once at start, then one cycle every few seconds.

A cycle reads the live tasks in one query and every runtime's processes in one call each,
then checks each task; writes happen only when something changed. Cycles never overlap
(the next is scheduled after the previous ends), each has a deadline, and a task whose
check raises is counted and skipped, never fatal."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from fleet_tui.config import Settings, spawn_grace_s
from fleet_tui.domain.agent_failures import PERMISSION_DENIED, WORKTREE_ELSEWHERE
from fleet_tui.domain.asks import ASKED_KEY, asked_in, describe_asked
from fleet_tui.domain.errors import FleetError, LeaseLostError, StaleVersionError, ValidationFailed
from fleet_tui.domain.models import CIStatus, Lease, RuntimeKind, TaskPatch, TaskRecord
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.watch.attention import Attention, PlanResume
from fleet_tui.engine.kit.bus import Event, MonitorTick
from fleet_tui.engine.watch.ci_polls import CIPolls
from fleet_tui.engine.watch.route_dispatch import TaskRoutes
from fleet_tui.engine.ledger.leases import hand_back, holding
from fleet_tui.engine.kit.listener import RECONNECT_BACKOFF_S
from fleet_tui.engine.kit.loops import PeriodicLoop
from fleet_tui.engine.kit.supervisor import Supervisor
from fleet_tui.engine.attempts.retry import is_due
from fleet_tui.engine.ledger.tracing import trace
from fleet_tui.engine.ports import (AuditNote, Background, Dispatch, FinishExecution, Headroom, Move, Notify, Relaunch,
                                   TaskPatcher, Workplace)
from fleet_tui.infra.agents import AgentProfile
from fleet_tui.infra.protocols import Forge, ProcessState
from fleet_tui.infra.worktree import WorktreeManager
from fleet_tui.store import leases
from fleet_tui.store.db import Database
from fleet_tui.store.errors import describe_failure, is_connection_lost

log = logging.getLogger(__name__)
ACTOR = "monitor"
OUTAGE_REPEAT_S = 30.0  # while the database stays away, the monitor says so this often
S = TaskStatus


class Monitor:
    """Built by the composition root (engine.session) from the narrow collaborators it uses:
    the ledger's writes (move, patch, notify, audit, finish_execution), where agents run
    (place, forge, worktrees), the fleet's leases (db, conductor_id), admission (headroom,
    drain_queue, relaunch, spawning_here), the event router (dispatch), the conductor's
    supervisor (background) and the telemetry."""

    def __init__(self, *, settings: Settings, conductor_id: str, db: Database, place: Workplace, forge: Forge,
                 worktrees: WorktreeManager, profiles: Mapping[str, AgentProfile], move: Move,
                 patch: TaskPatcher, notify: Notify, audit: AuditNote, finish_execution: FinishExecution,
                 list_live: Callable[[], Awaitable[Sequence[TaskRecord]]], spawning_here: Callable[[str], bool],
                 headroom: Headroom, drain_queue: Callable[[int], Awaitable[object]], relaunch: Relaunch,
                 dispatch: Dispatch, plan_resume: PlanResume, reviews_on: bool,
                 observe_cycle_s: Callable[[float], None],
                 publish: Callable[[Event], None], background: Background) -> None:
        self._fleet_settings = settings
        self.settings = settings.monitor
        self.conductor_id = conductor_id
        self._db = db
        self._place = place
        self._forge = forge
        self._worktrees = worktrees
        self._profiles = profiles
        self._move = move
        self._notify = notify
        self._audit = audit
        self._patch = patch
        self._finish_execution = finish_execution
        self._list_live = list_live
        self._spawning_here = spawning_here
        self._headroom = headroom
        self._drain_queue = drain_queue
        self._relaunch = relaunch
        self._reviews_on = reviews_on
        self._observe_cycle_s = observe_cycle_s
        self._publish = publish
        self._background = background
        self.cycles = 0
        self.errors = 0
        self.last_cycle_ms = 0.0
        self.degraded: dict[str, str] = {}  # checks skipped in the last cycle ("forge", ...) -> why
        self._cycles = PeriodicLoop(self._cycle_step, name="fleet-monitor",
                                    interval_s=lambda: self.settings.interval_s)
        self._launching = Supervisor("monitor-relaunches")  # by task id
        self.fleet_live = 0
        self.attention = Attention(profiles=profiles, place=place, patch=patch, notify=notify, audit=audit,
                                   plan_resume=plan_resume)
        self.actor = f"{ACTOR}@{conductor_id}"  # which conductor wrote, in the audit
        self.held: set[str] = set()  # task ids leased in the last cycle
        self._last_claim: float | None = None
        self._outage_said = 0.0
        self.database_error: str | None = None  # why the last cycle could not reach the database
        self.routes = TaskRoutes(dispatch)  # reviews and retries, through the event router
        self.conductors = 1
        self._waiting_changes = 0
        budget = getattr(forge, "budget", None)
        self.ci_polls = CIPolls(getattr(forge, "poll_floor_s", 0.0),
                                budget_per_hour=getattr(budget, "limit", None))

    # --- health and lifecycle ---------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._cycles.running

    def health(self) -> dict[str, Any]:
        return {"running": self.running, "last_cycle_ms": round(self.last_cycle_ms, 1),
                "cycles": self.cycles, "errors": self.errors, "degraded": sorted(self.degraded),
                "degraded_reasons": dict(self.degraded), "database_error": self.database_error}

    def _degrade(self, check: str, why: BaseException | str) -> None:
        """Skip `check` this cycle; the health panel says why (the log has the rest)."""
        self.degraded[check] = (why if isinstance(why, str) else f"{type(why).__name__}: {why}")[:200]

    def start(self) -> None:
        self._cycles.start()

    async def stop(self) -> None:
        """Stop cycling, let relaunches finish, hand our leases back at once."""
        await self._cycles.stop(self.settings.cycle_deadline_s)
        await self._launching.shutdown(timeout_s=30)
        await self.routes.stop()
        await hand_back(self._db, self.conductor_id)

    async def _cycle_step(self) -> None:
        await self.run_cycle()  # never raises: it counts and says its own errors

    async def run_cycle(self) -> None:
        """One cycle under its deadline; never raises."""
        started = time.perf_counter()
        deadline = self.settings.cycle_deadline_s
        try:
            async with asyncio.timeout(deadline) as budget:
                await self.cycle()
            if self.database_error is not None:
                log.info("monitor reaches the database again")
            self.database_error = None
        except TimeoutError as exc:
            self.errors += 1
            took = time.perf_counter() - started
            if budget.expired():
                log.error("monitor cycle exceeded its %.0fs deadline; aborted", deadline)
            else:  # something inside timed out (a connection, a command), not the cycle
                self._database_trouble(exc, took)
        except Exception as exc:
            self.errors += 1
            if is_connection_lost(exc):
                self._database_trouble(exc, time.perf_counter() - started)
            else:
                log.exception("monitor cycle failed")
        self.cycles += 1
        self.last_cycle_ms = (time.perf_counter() - started) * 1000
        self._observe_cycle_s(self.last_cycle_ms / 1000)
        self._publish(MonitorTick(self.cycles, self.last_cycle_ms, self.errors))

    def _database_trouble(self, exc: BaseException, took_s: float) -> None:
        """One line, no traceback: a database away is a state, said once per cycle."""
        what = describe_failure(exc)
        if self.database_error is None or time.monotonic() - self._outage_said >= OUTAGE_REPEAT_S:
            self._outage_said = time.monotonic()
            log.warning("monitor cycle failed after %.1fs: %s", took_s, what)
        self.database_error = what
        self._degrade("database", what)

    # --- reconcile ------------------------------------------------------------------------

    async def reconcile(self) -> dict[str, list[str]]:
        """Reconcile once, again on a fresh connection while the database connection is
        lost (a backend terminated, a server restart), up to the cycle deadline: the start
        must not die of a blip (it once did, just after taking the leases)."""
        deadline = time.monotonic() + self.settings.cycle_deadline_s
        attempt = 0
        while True:
            try:
                return await self._reconcile_once()
            except Exception as exc:
                if not is_connection_lost(exc) or time.monotonic() >= deadline:
                    raise
                delay = RECONNECT_BACKOFF_S[min(attempt, len(RECONNECT_BACKOFF_S) - 1)]
                attempt += 1
                log.warning("reconcile lost its database connection (%s); again in %.2fs",
                            type(exc).__name__, delay)
                await asyncio.sleep(delay)

    async def _reconcile_once(self) -> dict[str, list[str]]:
        """Among the tasks this conductor claims: registry says live but no process ->
        failed (conductor_restart). A process with no task is logged and left alone: it may
        belong to someone else. Live processes of known tasks are simply watched again.
        Safe to repeat: a task already failed is no longer live."""
        self.degraded = {}
        await leases.register(self._db, self.conductor_id, socket.gethostname(), os.getpid())
        pairs = await self._claim()
        states = await self._states({t.runtime for t, _ in pairs} | {RuntimeKind.TMUX})
        failed: list[str] = []
        for task, lease in pairs:
            if self._runtime_degraded(task) or self._owned_spawn(task.id):
                continue
            if task.status in (S.SPAWNING, S.RUNNING) and task.id not in states:
                if task.status == S.SPAWNING and not self._spawn_interrupted(task):
                    continue  # another process may be in the middle of this spawn
                try:
                    with holding(lease):
                        await self._move(task, S.FAILED, TaskPatch(
                            failure_reason="conductor_restart",
                            failure_context={"code": "conductor_restart",
                                             "message": "no agent process found after a conductor restart"}),
                            actor=self.actor, reason="conductor_restart")
                    failed.append(task.id)
                except (StaleVersionError, LeaseLostError):
                    pass
        known = {t.id for t, _ in pairs} | set(await self._all_live_ids())
        orphans = [tid for tid, st in states.items() if st.alive and tid not in known]
        for tid in orphans:
            log.warning("agent process fleet-%s has no live task; leaving it running", tid)
        return {"failed": failed, "orphans": orphans}

    async def _all_live_ids(self) -> list[str]:
        return [t.id for t in await self._list_live()]

    async def _claim(self) -> list[tuple[TaskRecord, Lease]]:
        """Heartbeat, then renew our leases and take free ones up to a fair share."""
        db, me = self._db, self.conductor_id
        conductors, live = await leases.heartbeat_and_share(db, me, self.settings.lease_ttl_s)
        self.fleet_live = live
        self.conductors = conductors
        limit = math.ceil(live / conductors) + self.settings.claim_slack
        claimed = await leases.claim(db, me, self.settings.lease_ttl_s, limit)
        self._last_claim = time.monotonic()
        return claimed

    def _spawn_interrupted(self, task: TaskRecord) -> bool:
        age = time.time() - task.updated_at.timestamp()
        return age > spawn_grace_s(self._fleet_settings)

    def _owned_spawn(self, task_id: str) -> bool:
        """A spawn saga of this process owns the task (a relaunch, or a spawn request)."""
        return task_id in self._launching or self._spawning_here(task_id)

    # --- the cycle --------------------------------------------------------------------------

    async def cycle(self) -> None:
        self.degraded = {}
        previous_claim = self._last_claim
        pairs = await self._claim()
        held = {t.id for t, _ in pairs}
        if previous_claim is not None and time.monotonic() - previous_claim > self.settings.lease_ttl_s:
            self._note_lost_leases(self.held - held)  # our leases lapsed meanwhile
        self.held = held
        states = await self._states({t.runtime for t, _ in pairs if t.status in (S.RUNNING, S.SPAWNING)})
        room = self._headroom.fleet_capacity - self.fleet_live
        if room > 0:  # queued spawns are admitted as capacity frees
            try:
                await self._drain_queue(room)
            except Exception as exc:
                if is_connection_lost(exc):
                    raise  # the cycle says it in one line
                self.errors += 1
                log.exception("draining the spawn queue failed")
        self._waiting_changes = sum(1 for t, _ in pairs if t.status == S.PR_CREATED)
        for task, lease in pairs:
            if self._owned_spawn(task.id) or self.routes.busy(task.id):
                continue
            try:
                with trace(task.trace_id), holding(lease):
                    await self._check(task, states)
            except (StaleVersionError, LeaseLostError):
                pass  # someone else moved it, or our lease lapsed: the holder decides
            except Exception:
                self.errors += 1
                log.exception("monitor check of task %s failed", task.id)
        self.routes.forget_except(self.held)
        self.ci_polls.forget_except({t.id for t, _ in pairs if t.status == S.PR_CREATED})

    def _note_lost_leases(self, gone: set[str]) -> None:
        """Tasks we held before our leases lapsed (paused, cut off, a long cycle) and hold no
        more: said once, naming who took them."""
        if not gone:
            return
        self._background(self._warn_lost(gone), name="monitor-lost-leases")  # kept and awaited at shutdown

    async def _warn_lost(self, gone: set[str]) -> None:
        try:
            owners = await leases.owners_of(self._db, sorted(gone))
        except Exception:
            return
        taken = {tid: owner for tid, owner in owners.items() if owner != self.conductor_id}
        if taken:
            log.warning("lost the leases of %d task(s) to other conductors (ours lapsed: paused or "
                        "cut off?): %s", len(taken), ", ".join(f"{t} -> {o}" for t, o in sorted(taken.items())[:10]),
                        extra={"lost_leases": len(taken)})

    async def _states(self, kinds: set[RuntimeKind | str]) -> dict[str, ProcessState]:
        """Every process of the given runtimes. A runtime that cannot answer is recorded in
        self.degraded and its tasks are skipped this cycle (never failed for it)."""
        merged: dict[str, ProcessState] = {}
        for kind in kinds:
            try:
                merged.update(await self._place.runtime_for(kind).states())
            except Exception as exc:
                self._degrade(f"runtime:{RuntimeKind(kind)}", exc)
                log.warning("runtime %s unavailable: %s", kind, exc)
        return merged

    def _runtime_degraded(self, task: TaskRecord) -> bool:
        return f"runtime:{RuntimeKind(task.runtime)}" in self.degraded

    async def _check(self, task: TaskRecord, states: dict[str, ProcessState]) -> None:
        if task.status == S.RUNNING:
            if self._runtime_degraded(task):
                return
            await self._check_running(task, states.get(task.id))
        elif task.status == S.SPAWNING:  # its owner's lease lapsed, or we would not hold it
            await self._adopt_or_fail_spawn(task, states.get(task.id))
        elif task.status == S.PROPOSED:
            self._launch_later(task)  # admitted, but its admitter's lease lapsed before the saga began
        elif task.status == S.PR_CREATED:
            await self._check_ci(task)
        elif task.status in (S.FAILED, S.REJECTED):
            if self._fleet_settings.retry.auto and not task.needs_input:  # a person decides those  # the retry policy is the operator's route
                self.routes.dispatch(task, f"task.{task.status}", {"failure_reason": task.failure_reason})
        elif task.status == S.RETRYING and is_due(task):
            self._launch_later(task)
        elif task.status == S.REVIEWING:
            self._review(task)  # a review no one runs here (e.g. after a restart): resume it

    async def _check_running(self, task: TaskRecord, state: ProcessState | None) -> None:
        try:
            await self._check_running_here(task, state)
        except ValidationFailed as exc:
            if exc.field != "worktree_path":
                raise
            # made by a conductor with another data directory (a `fleet-tui spawn` without
            # the server's FLEET_DATA_DIR): said once, instead of an error in every cycle
            await self._fail(task, WORKTREE_ELSEWHERE, {"message": (
                f"the task's worktree {task.worktree_path} is not under this conductor's data directory "
                f"({exc.rule}): it was made by a conductor with another FLEET_DATA_DIR, whose agent and "
                "worktree this one cannot reach; run that conductor, or spawn with the same settings")})

    async def _check_running_here(self, task: TaskRecord, state: ProcessState | None) -> None:
        if state is None:  # killed from outside (e.g. tmux kill-session)
            if await self._quarantined(task, None):
                return
            if await self.attention.resume(task) is None:
                await self._fail(task, "process_missing", {"message": "agent process disappeared"})
            return
        if state.alive:
            task = await self.attention.check(task)
            await self._check_alive(task)
            return
        if await self._quarantined(task, state.exit_code):
            return
        if state.exit_code == 0:
            await self._on_clean_exit(task)
            return
        if task.runtime == RuntimeKind.DOCKER and state.exit_code == 137 and not state.oom_killed:
            # SIGKILLed from outside (docker kill), not by the OOM killer: resume if we can
            if await self.attention.resume(task) is not None:
                return
        oom = state.oom_killed or (state.exit_code == 137 and task.runtime != RuntimeKind.DOCKER)
        context = await self._capture(task, exit_code=state.exit_code, oom=oom)
        reason = "oom" if oom else (self._classified(task, context) or "agent_exit")
        await self._fail(task, reason, context)

    async def _quarantined(self, task: TaskRecord, exit_code: int | None) -> bool:
        """After a run, before anything reads the worktree: if the agent rewrote the links
        between its worktree and the repository (`.git`, the admin dir's gitdir/commondir),
        its work is kept as data (a bundle) and the task fails `tampered` (never retried
        by policy). Every host-side git call is pinned anyway; this makes it visible."""
        try:
            checkout = self._place.checkout(task)
        except ValidationFailed:  # no repository any more: the usual checks report it
            return False
        findings = await asyncio.to_thread(checkout.tampering)
        if not findings:
            return False
        bundle = await self._worktrees.preserve(checkout, task.base_branch)
        log.warning("task %s tampered with its worktree: %s", task.id, "; ".join(findings))
        from fleet_tui.domain.agent_failures import TAMPERED

        await self._fail(task, TAMPERED, {
            "message": "the agent rewrote its worktree's links to the repository; nothing in it was followed",
            "tampered": findings, "bundle": str(bundle) if bundle else None, "exit_code": exit_code})
        return True

    async def _adopt_or_fail_spawn(self, task: TaskRecord, state: ProcessState | None) -> None:
        """A spawn whose owner died or stalled mid-saga: its live agent is adopted at once
        (the old owner, fenced by the lease, will neither write nor undo anything); with no
        agent, it fails once the grace has passed, by when any step it was in has ended."""
        if state is not None and state.alive:
            patch = TaskPatch(spawned_at=task.updated_at)
            if task.runtime == RuntimeKind.DOCKER:
                patch.container_id = state.ref
            else:
                patch.tmux_session = state.ref
            await self._move(task, S.RUNNING, patch, actor=self.actor, reason="adopted an interrupted spawn")
            return
        if not self._spawn_interrupted(task):
            return
        await self._move(task, S.FAILED, TaskPatch(
            failure_reason="spawn_interrupted",
            failure_context={"code": "spawn_interrupted", "message": "the spawn never completed"}),
            actor=self.actor, reason="spawn_interrupted")

    async def _check_alive(self, task: TaskRecord) -> None:
        now = time.time()
        spawned = task.spawned_at.timestamp() if task.spawned_at else now
        if now - spawned > self.settings.timeout_minutes * 60:
            await self._place.runtime_for(task.runtime).kill(task.id)
            await self._fail(task, "timeout", await self._capture(
                task, exit_code=None, note=f"ran longer than {self.settings.timeout_minutes:g} minutes"))
            return
        if task.needs_input:
            return  # waiting for a person is not a stall
        last = await self._last_activity(task, spawned)
        if now - last > self.settings.stall_minutes * 60:
            await self._place.runtime_for(task.runtime).kill(task.id)
            await self._fail(task, "stalled", await self._capture(
                task, exit_code=None, note=f"no output and no commit for {self.settings.stall_minutes:g} minutes"))

    async def _last_activity(self, task: TaskRecord, spawned: float) -> float:
        """Latest of: agent output (log mtime), last commit on the branch, spawn time."""
        runtime = self._place.runtime_for(task.runtime)
        last = spawned
        output_at = await runtime.last_output_at(task.id)
        if output_at:
            last = max(last, output_at)
        if time.time() - last > self.settings.stall_minutes * 60 and task.worktree_path:
            # only when output looks stale: one git call, not one per cycle per task
            checkout = self._place.checkout(task)
            result = await checkout.run(["log", "-1", "--format=%ct", checkout.ref], check=False)
            if result.ok and result.stdout.strip():
                last = max(last, float(result.stdout.strip()))
        return last

    async def _on_clean_exit(self, task: TaskRecord) -> None:
        forge = self._forge
        try:
            change = await forge.find_change(self._place.change_ref(task))
            if change is None and await self._commit_leftovers(task):
                change = await forge.find_change(self._place.change_ref(task))
        except FleetError as exc:
            self._degrade("forge", exc)
            log.warning("forge unavailable for %s: %s", task.id, exc)
            return
        if change is None:
            context = await self._capture(task, exit_code=0, note="the agent exited 0 without committing a change")
            await self._fail(task, self._classified(task, context) or "no_change", context)
            return
        await self._finish_execution(task, exit_code=0)
        await self._move(task, S.PR_CREATED, TaskPatch(
            pr_number=change.pr_number, pr_url=change.pr_url, ci_status=CIStatus.PENDING,
            exit_code=0, needs_input=False), actor=self.actor, reason=f"change {change.head_sha[:12]} ({change.commits_ahead} commits)")

    async def _commit_leftovers(self, task: TaskRecord) -> bool:
        """Edits the agent left uncommitted become a commit of the conductor's (audited)."""
        from pathlib import Path

        from fleet_tui.infra.leftovers import commit_leftovers, commit_message

        if not task.worktree_path or not task.branch or not Path(task.worktree_path).is_dir():
            return False
        try:
            made = await commit_leftovers(self._place.checkout(task), message=commit_message(task.description, task.id))
        except Exception as exc:  # a worktree git refuses is the agent's failure, not ours
            log.warning("could not commit what the agent of %s left: %s", task.id, exc)
            return False
        if made is None:
            return False
        await self._audit(task, "conductor_committed", {"sha": made.sha, "files": made.files[:50],
                                                         "file_count": len(made.files)})
        return True

    def _classified(self, task: TaskRecord, context: dict[str, Any]) -> str | None:
        """A reason read from the agent's own output (auth, usage limit, ...), recorded in
        the context (with the reset time of a usage limit)."""
        from fleet_tui.domain.agent_failures import classify_output

        found = classify_output(str(context.get("error_output") or ""))
        if found is None:
            return None
        context["reason"] = found.reason
        context["evidence"] = found.evidence
        if found.retry_at is not None:
            context["retry_at"] = found.retry_at.isoformat()
        profile = self._profiles.get(task.agent or "")
        # what it asked for, and the rule that grants it: only from a stream the launcher
        # rendered (there no agent line can pass for a summary line)
        if found.reason == PERMISSION_DENIED and profile is not None and profile.stream:
            context[ASKED_KEY] = [ask.to_dict() for ask in asked_in(str(context.get("error_output") or ""))]
        return found.reason

    async def _check_ci(self, task: TaskRecord) -> None:
        if not self.ci_polls.due(task.id):
            return
        try:
            result = await self._forge.ci_status(self._place.change_ref(task))
        except FleetError as exc:
            self._degrade("forge", exc)
            log.warning("forge CI check unavailable for %s: %s", task.id, exc)
            return
        if result.status == CIStatus.PENDING:
            # every conductor polls its share of the fleet's waiting changes
            waiting = self.conductors * max(self._waiting_changes, 1)
            self.ci_polls.pending(task.id, waiting=waiting)
            return
        if result.status == CIStatus.FAILING:
            context = await self._capture(task, exit_code=None, ci_output=result.output)
            await self._move(task, S.FAILED, TaskPatch(
                ci_status=CIStatus.FAILING, failure_reason="ci_failed", failure_context=context),
                actor=self.actor, reason="CI failed")
            await self._notify(task, "ci_failed", "CI failed")
            return
        if task.ci_status != CIStatus.PASSING:
            task = await self._patch(task, TaskPatch(ci_status=CIStatus.PASSING))
            await self._notify(task, "pr_ready", "change ready for review, CI passing")
        if self._reviews_on:  # review switched off: the change waits for a person
            self._review(task)

    def _review(self, task: TaskRecord) -> None:
        """The review route (seeded: review_pipeline) for a change with CI passing."""
        self.routes.dispatch(task, "task.pr_created", {"ci_status": str(task.ci_status or CIStatus.PASSING)})

    async def _fail(self, task: TaskRecord, reason: str, context: dict[str, Any]) -> None:
        await self._finish_execution(task, exit_code=context.get("exit_code"), failure=reason)
        asked = context.get(ASKED_KEY) or []
        moved = await self._move(task, S.FAILED, TaskPatch(
            failure_reason=reason, failure_context=context, exit_code=context.get("exit_code"),
            needs_input=bool(asked)),
            actor=self.actor, reason=reason)
        if asked:  # not the agent's failure: a person decides (retry --allow, or answer)
            await self._notify(moved, "needs_input", f"the agent was refused {describe_asked(asked)}")
            return
        await self._notify(task, "failed", f"attempt {task.retry_count + 1} failed: {reason}")

    async def _capture(self, task: TaskRecord, *, exit_code: int | None, oom: bool = False,
                       ci_output: str = "", note: str = "") -> dict[str, Any]:
        from fleet_tui.engine.attempts.failure import capture_task_failure

        return await capture_task_failure(task, place=self._place, forge=self._forge, worktrees=self._worktrees,
                                          exit_code=exit_code, oom=oom,
                                          ci_output=ci_output, note=note)

    def _launch_later(self, task: TaskRecord) -> None:
        """Respawn outside the cycle so a slow spawn never holds the cycle's deadline."""

        async def run() -> None:
            try:
                await self._relaunch(task, actor=self.actor)
            except StaleVersionError:
                pass
            except Exception:
                self.errors += 1
                log.exception("relaunch of %s failed", task.id)

        self._launching.start(run(), name=f"relaunch-{task.id}", key=task.id)
