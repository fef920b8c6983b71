"""The ledger: the one writer of task state. Every change to a task's row (a guarded move,
a patch of its other fields, a counted failure, its deletion, its admission) and the
conductor's audit rows go through here, and what must follow a write follows it here: the
faces hear of it (publish), an agent that left running has its runtime released, a terminal
task gets its notification and its on_terminal hooks.

It sits low in the engine (only kit is below it), so what it needs from above (the runtime,
the notifications, the event router's hook) is handed in as callables by the composition
root (engine/parts.py build_parts, engine/session.py build_conductor). A test gives it fakes.
tests/unit/test_ledger_only_writer.py checks nobody else calls TaskRegistry's writers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fleet_tui.domain.models import SYSTEM, Operator, TaskPatch, TaskRecord
from fleet_tui.domain.status import TERMINAL_NOTIFICATION, TERMINAL_STATUSES, TaskStatus
from fleet_tui.engine.kit.bus import Event, TaskChanged, TaskDeleted
from fleet_tui.engine.ledger.leases import held_lease
from fleet_tui.engine.ports import Notify
from fleet_tui.store import audit as audit_store
from fleet_tui.store import notifications as notification_store
from fleet_tui.store.db import Database
from fleet_tui.store.tasks import Admission, TaskRegistry

log = logging.getLogger(__name__)

# called with (task, its terminal status, reason) once a move to a terminal status is committed
OnTerminal = Callable[[TaskRecord, TaskStatus, str | None], None]
# release what an exited agent left in its runtime (the task's runtime names which one)
Release = Callable[[TaskRecord], Awaitable[None]]


class TaskLedger:
    def __init__(self, registry: TaskRegistry, db: Database, *, publish: Callable[[Event], None],
                 release: Release, notify: Notify) -> None:
        self.registry = registry
        self._db = db
        self._publish = publish
        self._release = release
        self._notify = notify
        # the composition root registers the event router's (routes for task.<status>)
        self.on_terminal: list[OnTerminal] = []

    # --- task state ---------------------------------------------------------------------

    async def move(self, task: TaskRecord, target: TaskStatus, patch: TaskPatch | None = None,
                   *, actor: str, reason: str | None = None, operator: Operator | None = None,
                   notes: Sequence[tuple[str, dict[str, Any]]] = (), within: Any = None) -> TaskRecord:
        """One guarded transition (audit + outbox in the same transaction), then publish.
        notes: the conductor's audit rows (action, detail) written first; within(conn, moved):
        more writes; all in the move's transaction. An operator's move is checked against
        their rights; the system's is fenced by the lease the caller holds."""
        moved = await self.registry.transition(
            task.id, task.version, target, operator=operator or SYSTEM, patch=patch,
            actor=actor, reason=reason, lease=None if operator else held_lease.get(),
            notes=[("conductor", action, detail) for action, detail in notes], within=within,
            expected_status=task.status,
        )
        self._publish(TaskChanged(moved))
        if task.status == TaskStatus.RUNNING:
            await self._release_runtime(moved)
        if target in TERMINAL_STATUSES:
            await self.notify_terminal(moved)  # recorded now, whatever the routes say
            for hook in self.on_terminal:
                hook(moved, target, reason)
        return moved

    async def _release_runtime(self, task: TaskRecord) -> None:
        """Out of running: what an exited agent left in its runtime goes now, not at the
        retention sweep (a tmux session kept a dead pane and the log pipe's `cat`, two
        processes per task for 72 h). Before the move returns, so a retry's new session is
        never the one released; a live agent is left to whoever stops it."""
        try:
            await self._release(task)
        except Exception as exc:  # the sweep removes it later
            log.warning("could not release what the agent of %s left: %s", task.id, exc)

    async def patch(self, task: TaskRecord, patch: TaskPatch) -> TaskRecord:
        """Fields of the task that are not its state, under the same version guard (and the
        lease the caller holds), then publish."""
        changed = await self.registry.update(task.id, task.version, patch=patch, operator=None,
                                             lease=held_lease.get())
        self._publish(TaskChanged(changed))
        return changed

    async def record_failure(self, task: TaskRecord, *, context: dict[str, Any] | None = None,
                             operator: Operator | None = None) -> TaskRecord | None:
        """Count one failed attempt and keep its context (default: the task's), only while
        its retry budget lasts: the task with its version bumped, None once spent. An
        operator's retry is theirs; the system's is fenced by the lease the caller holds."""
        return await self.registry.record_failure(
            task.id, operator=operator, context=task.failure_context or {} if context is None else context,
            lease=None if operator else held_lease.get())

    async def delete(self, task: TaskRecord, operator: Operator) -> None:
        """Remove a terminal task (its audit history stays), then tell the faces."""
        await self.registry.delete(task.id, operator=operator)
        self._publish(TaskDeleted(task.id))

    async def admit(self, operator: Operator, *, limit: int, capacity: int, key: str | None,
                    **fields: Any) -> Admission:
        """The governor's admission (TaskRegistry.admit): a new task with its spawn lease
        and its first move, a queue entry, or a refusal. The governor decides the limits;
        the write is the ledger's. The caller publishes the task once it owns its saga."""
        return await self.registry.admit(operator, limit=limit, capacity=capacity, key=key, **fields)

    # --- the conductor's audit rows and the terminal notification -----------------------

    async def audit(self, task: TaskRecord, action: str, detail: dict[str, Any]) -> None:
        await self.audit_many(task, [(action, detail)])

    async def audit_many(self, task: TaskRecord, notes: list[tuple[str, dict[str, Any]]]) -> None:
        """The conductor's audit rows (action, detail) of one task, in one transaction."""
        if not notes:
            return
        async with self._db.system() as conn:
            for action, detail in notes:
                await audit_store.append(conn, operator_id=task.operator_id, action=action,
                                         actor="conductor", task_id=task.id, detail=detail,
                                         trace_id=task.trace_id)

    async def notify_terminal(self, task: TaskRecord) -> None:
        # The outbox relay records the same row (same key) from the transition's event,
        # so INV-018 holds even if this process dies right after the commit.
        kind, summary = TERMINAL_NOTIFICATION.get(TaskStatus(task.status), ("completed", str(task.status)))
        await self._notify(task, kind, summary, dedup_key=notification_store.terminal_dedup_key(task.id))
