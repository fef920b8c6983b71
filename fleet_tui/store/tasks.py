"""The task registry: fleet_tasks with optimistic concurrency, audit and outbox rows
written in the same transaction as every change.

Every method taking conn=None opens its own tenant transaction; given a connection it
runs inside the caller's transaction, so the engine can compose several steps atomically."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from contextlib import asynccontextmanager
from enum import Enum
from typing import Any, NoReturn, TypeVar
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import asyncpg

from fleet_tui.domain.errors import (
    LeaseLostError,
    NotFoundError,
    SpawnDeniedError,
    StaleVersionError,
    TaskLiveError,
    ValidationFailed,
)
from fleet_tui.domain.models import Lease, Operator, RuntimeKind, TaskPatch, TaskQuery, TaskRecord, TaskType
from fleet_tui.domain.status import TERMINAL_STATUSES, TaskStatus, can_transition, check_transition, is_terminal
from fleet_tui.store import audit, outbox
from fleet_tui.store.admissions import AdmissionBatches
from fleet_tui.store.db import Database
from fleet_tui.store.errors import as_validation_error, is_connection_lost
from fleet_tui.store.leases import LEASE_CLAUSE
from fleet_tui.store.records import TASK_SELECT, to_task

T = TypeVar("T")
TERMINAL = sorted(str(s) for s in TERMINAL_STATUSES)
# Literal, not a parameter, so the planner can prove the partial index fleet_tasks_live_idx.
LIVE_SQL = "status NOT IN (" + ", ".join(f"'{s}'" for s in TERMINAL) + ")"


@dataclass(frozen=True)
class Admission:
    """What fleet_admit_one decided: outcome, its reference (task or queue entry id), the
    operator's and the fleet's live counts when it decided, and the task when there is one."""

    outcome: str
    ref: str | None
    live: int | None
    fleet_live: int | None
    task: TaskRecord | None


def new_task_id() -> str:
    return uuid.uuid4().hex[:12]


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _live_tasks_phrase(count: int) -> str:
    return f"{count} live task" + ("" if count == 1 else "s")


def denial_message(operator: Operator, live: int, limit: int) -> str:
    return (f"{operator.tier} operator {operator.id} has {_live_tasks_phrase(live)}; "
            f"the {operator.tier} limit is {limit}")


class TaskRegistry:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._admissions = AdmissionBatches(db.pool)

    # --- scopes --------------------------------------------------------------------------

    @asynccontextmanager
    async def _scope(self, operator: Operator | None, conn: asyncpg.Connection | None,
                     kind: str = "write") -> AsyncIterator[asyncpg.Connection]:
        """The given connection, or a fresh transaction as operator (None = system)."""
        if conn is not None:
            yield conn
            return
        scope = self.db.system(kind=kind) if operator is None else self.db.tenant(operator, kind=kind)
        async with scope as fresh:
            yield fresh

    async def _read(self, operator: Operator | None, conn: asyncpg.Connection | None,
                    read: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """An idempotent read; on a lost connection (a backend killed, a server restart), tried
        once more on a fresh one: the pool's idle connections are dropped first, since they
        likely went with it."""
        if conn is not None:
            return await read(conn)
        try:
            async with self._scope(operator, None, "read") as c:
                return await read(c)
        except Exception as exc:
            if not is_connection_lost(exc):
                raise
        await self.db.pool.expire_connections()
        async with self._scope(operator, None, "read") as c:
            return await read(c)

    # --- create / read -------------------------------------------------------------------

    async def create(
        self,
        operator: Operator,
        *,
        description: str,
        repo: str,
        base_branch: str,
        task_type: TaskType | str,
        agent: str | None = None,
        model: str | None = None,
        runtime: RuntimeKind | str = "tmux",
        priority: int = 50,
        max_retries: int = 3,
        idempotency_key: str | None = None,
        branch: str | None = None,
        trace_id: str | None = None,
        conn: asyncpg.Connection | None = None,
    ) -> TaskRecord:
        """Insert a proposed task at version 0 (audit + outbox rows in the same transaction).
        A repeated idempotency key returns the existing task unchanged."""
        _require_text("description", description)
        _require_text("repo", repo)
        _require_text("base_branch", base_branch)
        task_id = new_task_id()
        async with self._scope(operator, conn) as c:
            try:
                row = await c.fetchrow(
                    f"INSERT INTO fleet_tasks (id, operator_id, description, repo, base_branch,"
                    f" task_type, agent, model, runtime, priority, max_retries, idempotency_key,"
                    f" branch, trace_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                    f" ON CONFLICT (operator_id, idempotency_key) DO NOTHING RETURNING {TASK_SELECT}",
                    task_id, operator.id, description, repo, base_branch, _plain(task_type), agent, model,
                    _plain(runtime), priority, max_retries, idempotency_key, branch, trace_id,
                )
            except asyncpg.PostgresError as exc:
                raise as_validation_error(exc) or exc from None
            if row is None:  # the key was already used: idempotent replay
                existing = await self.find_by_idempotency_key(operator, idempotency_key or "", conn=c)
                if existing is None:
                    raise NotFoundError("task with idempotency key", idempotency_key or "")
                return existing
            task = to_task(row)
            await self._record(c, task, actor=operator.id, action="created", from_status=None)
            return task

    async def get(self, task_id: str, *, operator: Operator | None,
                  conn: asyncpg.Connection | None = None) -> TaskRecord:
        row = await self._read(operator, conn, lambda c: c.fetchrow(
            f"SELECT {TASK_SELECT} FROM fleet_tasks WHERE id = $1", task_id))
        if row is None:
            raise NotFoundError("task", task_id)
        return to_task(row)

    async def find_by_idempotency_key(self, operator: Operator, key: str,
                                      conn: asyncpg.Connection | None = None) -> TaskRecord | None:
        row = await self._read(operator, conn, lambda c: c.fetchrow(
            f"SELECT {TASK_SELECT} FROM fleet_tasks WHERE operator_id = $1 AND idempotency_key = $2",
            operator.id, key))
        return None if row is None else to_task(row)

    async def query(self, q: TaskQuery, *, operator: Operator | None) -> list[TaskRecord]:
        """Newest first. Row-level security bounds what `operator` sees whatever q asks."""
        clauses: list[str] = []
        args: list[Any] = []

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if q.operator_id is not None:
            clauses.append(f"operator_id = {arg(q.operator_id)}")
        if q.statuses:
            clauses.append(f"status = ANY({arg([str(s) for s in q.statuses])}::text[])")
        if q.agent is not None:
            clauses.append(f"agent = {arg(q.agent)}")
        if q.task_type is not None:
            clauses.append(f"task_type = {arg(str(q.task_type))}")
        if q.since is not None:
            clauses.append(f"created_at >= {arg(q.since)}")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {TASK_SELECT} FROM fleet_tasks {where} ORDER BY created_at DESC, id LIMIT {arg(q.limit)}"
        rows = await self._read(operator, None, lambda c: c.fetch(sql, *args))
        return [to_task(r) for r in rows]

    async def count_active(self, operator_id: str, *, conn: asyncpg.Connection | None = None) -> int:
        """Live (non-terminal) tasks of one operator; system visibility unless conn given."""
        return await self._read(None, conn, lambda c: c.fetchval(
            f"SELECT count(*) FROM fleet_tasks WHERE operator_id = $1 AND {LIVE_SQL}", operator_id))

    async def recount_live(self) -> int:
        """Rebuild the live counts admissions read (fleet_live_counts, kept by a trigger) from
        the tasks themselves, under the fleet lock: the number of rows that were wrong."""
        corrected: int = await self.db.pool.fetchval("SELECT fleet_recount()")
        return corrected

    async def count_all_active(self) -> int:
        return await self._read(None, None, lambda c: c.fetchval(
            f"SELECT count(*) FROM fleet_tasks WHERE {LIVE_SQL}"))

    async def list_live(self, *, operator: Operator | None = None) -> list[TaskRecord]:
        """Every live task (operator None = system: all operators), oldest first."""
        rows = await self._read(operator, None, lambda c: c.fetch(
            f"SELECT {TASK_SELECT} FROM fleet_tasks WHERE {LIVE_SQL} ORDER BY created_at, id"))
        return [to_task(r) for r in rows]

    # --- changes -------------------------------------------------------------------------

    async def delete(self, task_id: str, *, operator: Operator | None,
                     conn: asyncpg.Connection | None = None) -> None:
        """Remove a terminal task; its audit history stays."""
        async with self._scope(operator, conn) as c:
            row = await c.fetchrow(
                "SELECT status, version, operator_id FROM fleet_tasks WHERE id = $1 FOR UPDATE", task_id)
            if row is None:
                raise NotFoundError("task", task_id)
            if not is_terminal(row["status"]):
                raise TaskLiveError(
                    f"task {task_id} is {row['status']}; only {', '.join(TERMINAL)} tasks can be deleted")
            await c.execute("DELETE FROM fleet_tasks WHERE id = $1", task_id)
            actor = operator.id if operator is not None else "system"
            await audit.append(c, task_id=task_id, operator_id=row["operator_id"], actor=actor,
                               action="deleted", from_status=row["status"], version=row["version"])
            await outbox.enqueue(c, "task.deleted",
                                 {"id": task_id, "status": row["status"], "version": row["version"],
                                  "operator": row["operator_id"]},
                                 task_id=task_id, operator_id=row["operator_id"],
                                 dedup_key=f"task:{task_id}:deleted")

    async def transition(
        self,
        task_id: str,
        expected_version: int,
        target: TaskStatus | str,
        *,
        operator: Operator | None,
        patch: TaskPatch | None = None,
        actor: str = "system",
        reason: str | None = None,
        conn: asyncpg.Connection | None = None,
        lease: Lease | None = None,
        notes: Sequence[tuple[str, str, dict[str, Any]]] = (),
        within: Callable[[asyncpg.Connection, TaskRecord], Awaitable[None]] | None = None,
        expected_status: TaskStatus | str | None = None,
    ) -> TaskRecord:
        """Move a task to target if it is still at expected_version and the move is allowed.
        With a lease, also only while that lease is held (else LeaseLostError).

        Raises InvalidTransitionError, StaleVersionError (someone else changed it first) or
        NotFoundError. One guarded UPDATE; audit and outbox rows in the same transaction,
        with the audit rows of notes, (actor, action, detail) written before the move's, and
        whatever within(conn, moved) writes: one commit (a spawn's moves are on its path).
        expected_status: the status the caller read with expected_version; when the move is
        allowed from it, the row is not read first (the UPDATE's guard is the check: a round
        trip less); else it is read, so the errors are as without it."""
        target = TaskStatus(target)
        async with self._scope(operator, conn) as c:
            if expected_status is not None and can_transition(expected_status, target):
                from_status = str(TaskStatus(expected_status))
            else:
                current = await c.fetchrow("SELECT status, version FROM fleet_tasks WHERE id = $1", task_id)
                if current is None:
                    raise NotFoundError("task", task_id)
                if current["version"] != expected_version:
                    raise StaleVersionError(task_id, expected_version)
                check_transition(current["status"], target)
                from_status = current["status"]

            fields = patch.set_fields() if patch is not None else {}
            args: list[Any] = [task_id, expected_version, from_status, str(target)]
            sets = ["status = $4", "version = version + 1", *_patch_sets(fields, args)]
            if target in TERMINAL_STATUSES and "completed_at" not in fields:
                sets.append("completed_at = now()")
            fence = _lease_fence(lease, args)
            try:
                row = await c.fetchrow(
                    f"UPDATE fleet_tasks SET {', '.join(sets)}"
                    f" WHERE id = $1 AND version = $2 AND status = $3{fence} RETURNING {TASK_SELECT}",
                    *args)
            except asyncpg.PostgresError as exc:
                raise as_validation_error(exc) or exc from None
            if row is None:
                await self._refused(c, task_id, expected_version, lease)
            task = to_task(row)
            if notes:  # before the move's own row; one statement for all of them
                await c.execute(
                    "INSERT INTO fleet_audit (task_id, operator_id, actor, action, detail, trace_id)"
                    " SELECT $1, $2, n.e->>0, n.e->>1, n.e->2, $3"
                    " FROM jsonb_array_elements($4::jsonb) WITH ORDINALITY AS n(e, k) ORDER BY n.k",
                    task_id, task.operator_id, task.trace_id,
                    [[note_actor, action, note or {}] for note_actor, action, note in notes])
            detail: dict[str, Any] = {"fields": sorted(fields)}  # names only: values may be large
            if reason:
                detail["reason"] = reason
            await self._record(c, task, actor=actor, action="transition", from_status=from_status,
                               detail=detail)
            if within is not None:
                await within(c, task)
            return task

    @staticmethod
    async def _refused(c: asyncpg.Connection, task_id: str, expected_version: int, lease: Lease | None) -> NoReturn:
        """Why a guarded UPDATE matched no row: gone, changed meanwhile, or its lease lost."""
        current = await c.fetchrow("SELECT version FROM fleet_tasks WHERE id = $1", task_id)
        if current is None:
            raise NotFoundError("task", task_id)
        if current["version"] != expected_version or lease is None:
            raise StaleVersionError(task_id, expected_version)
        raise LeaseLostError(task_id)

    async def update(self, task_id: str, expected_version: int, *, operator: Operator | None,
                     patch: TaskPatch, actor: str = "system", reason: str | None = None,
                     conn: asyncpg.Connection | None = None, lease: Lease | None = None) -> TaskRecord:
        """Change a task's metadata without moving its status: the same version guard, audit
        row and outbox event as a transition."""
        fields = patch.set_fields()
        async with self._scope(operator, conn) as c:
            args: list[Any] = [task_id, expected_version]
            sets = ["version = version + 1", *_patch_sets(fields, args)]
            fence = _lease_fence(lease, args)
            try:
                row = await c.fetchrow(
                    f"UPDATE fleet_tasks SET {', '.join(sets)}"
                    f" WHERE id = $1 AND version = $2{fence} RETURNING {TASK_SELECT}", *args)
            except asyncpg.PostgresError as exc:
                raise as_validation_error(exc) or exc from None
            if row is None:
                if await c.fetchval("SELECT 1 FROM fleet_tasks WHERE id = $1", task_id) is None:
                    raise NotFoundError("task", task_id)
                raise LeaseLostError(task_id) if lease is not None else StaleVersionError(task_id, expected_version)
            task = to_task(row)
            detail: dict[str, Any] = {"fields": sorted(fields)}
            if reason:
                detail["reason"] = reason
            await self._record(c, task, actor=actor, action="update", from_status=str(task.status),
                               detail=detail)
            return task

    async def record_failure(self, task_id: str, *, operator: Operator | None, context: dict[str, Any],
                             conn: asyncpg.Connection | None = None,
                             lease: Lease | None = None) -> TaskRecord | None:
        """Count one failed attempt and keep its context, only while retry_count < max_retries.
        Atomic under concurrency; None when the budget is exhausted. Bumps the version, so a
        writer holding the previous version cannot overwrite the count."""
        async with self._scope(operator, conn) as c:
            args: list[Any] = [task_id, context]
            fence = _lease_fence(lease, args)
            row = await c.fetchrow(
                f"UPDATE fleet_tasks SET retry_count = retry_count + 1, failure_context = $2,"
                f" version = version + 1"
                f" WHERE id = $1 AND retry_count < max_retries{fence} RETURNING {TASK_SELECT}", *args)
            if row is None and lease is not None and await c.fetchval(
                    "SELECT retry_count < max_retries FROM fleet_tasks WHERE id = $1", task_id):
                raise LeaseLostError(task_id)  # budget left: the fence refused the write
            if row is None:
                if await c.fetchval("SELECT 1 FROM fleet_tasks WHERE id = $1", task_id) is None:
                    raise NotFoundError("task", task_id)
                return None
            task = to_task(row)
            await audit.append(c, task_id=task.id, operator_id=task.operator_id,
                               actor=operator.id if operator is not None else "system",
                               action="failure_recorded", version=task.version,
                               detail={"retry_count": task.retry_count, "max_retries": task.max_retries},
                               trace_id=task.trace_id)
            return task

    async def admit(self, operator: Operator, *, limit: int, capacity: int, key: str | None,
                    owner: str | None = None, lease_s: float = 30.0, queue_id: int | None = None,
                    may_queue: bool = True, request: dict[str, Any] | None = None,
                    actor: str | None = None, spawn: Callable[[str], dict[str, Any]] | None = None,
                    **task: Any) -> Admission:
        """The governor's authority, one decision for the whole fleet (fleet_admit_one in
        sql/011, sent in batches: store/admissions.py): under one lock every conductor shares, an existing task for the idempotency key, else
        the tier limit, else fleet capacity (and requests already waiting) -> queued, else the
        task is inserted with its spawn lease (owner) and, when admitting queue entry
        queue_id, that entry turns 'admitted' in the same transaction. spawn(task_id): what
        the spawn saga's first move would write (fleet_begin_spawn in sql/014: branch,
        worktree_path, metadata, notes, fields): a created task is moved to spawning in the
        admission's transaction."""
        _require_text("description", task.get("description", ""))
        _require_text("repo", task.get("repo", ""))
        _require_text("base_branch", task.get("base_branch", ""))
        task_id = new_task_id()
        decided: dict[str, Any] = {} if spawn is None else {"spawn": spawn(task_id)}  # absent: stays proposed
        row = await self._admissions.decide({**decided,
            "operator": operator.id, "tier": str(operator.tier), "admin": operator.is_admin, "limit": limit,
            "capacity": capacity, "queue_id": queue_id, "may_queue": may_queue, "request": request or {},
            "actor": actor or operator.id, "owner": owner, "lease_s": float(lease_s), "id": task_id,
            "description": task["description"], "repo": task["repo"], "base": task["base_branch"],
            "type": _plain(task.get("task_type", "feature")), "agent": task.get("agent"),
            "model": task.get("model"), "runtime": _plain(task.get("runtime", "tmux")),
            "priority": task.get("priority", 50), "max_retries": task.get("max_retries", 3), "key": key,
            "branch": task.get("branch"), "trace": task.get("trace_id")})
        record = row["task"]
        admitted = None if record is None else to_task(record)
        return Admission(outcome=row["outcome"], ref=row["ref"], live=row["live"],
                         fleet_live=row["fleet_live"], task=admitted)

    async def admit_and_insert(self, operator: Operator, limit: int,
                               **create_kwargs: Any) -> tuple[TaskRecord, bool]:
        """Admit under the tier limit alone (no fleet capacity, no queue, no lease): the
        registry's own callers and tests. Raises SpawnDeniedError over the limit."""
        create_kwargs.pop("conn", None)
        key = create_kwargs.pop("idempotency_key", None)
        admission = await self.admit(operator, limit=limit, capacity=2**31 - 1, key=key,
                                     may_queue=False, **create_kwargs)
        if admission.outcome == "denied":
            raise SpawnDeniedError(denial_message(operator, admission.live or 0, limit),
                                   operator_id=operator.id, tier=str(operator.tier),
                                   live=admission.live or 0, limit=limit)
        assert admission.task is not None, admission
        return admission.task, admission.outcome == "created"

    # --- helpers -------------------------------------------------------------------------

    async def _record(self, c: asyncpg.Connection, task: TaskRecord, *, actor: str, action: str,
                      from_status: str | None, detail: dict[str, Any] | None = None) -> None:
        """The audit row and the outbox event every change carries, in one round trip
        (fleet_record in sql/010, which fleet_admit_one uses too)."""
        await c.execute("SELECT fleet_record(t, $2, $3, $4, $5) FROM fleet_tasks t WHERE t.id = $1",
                        task.id, actor, action, from_status, detail or {})


def _lease_fence(lease: Lease | None, args: list[Any]) -> str:
    """' AND <lease still held>' with its parameters appended, or '' without a lease."""
    if lease is None:
        return ""
    args.extend([lease.owner, lease.epoch])
    return " AND " + LEASE_CLAUSE.format(owner=len(args) - 1, epoch=len(args))


def _patch_sets(fields: dict[str, Any], args: list[Any]) -> list[str]:
    """SET clauses for a patch, appending their values to args."""
    sets = []
    for name, value in fields.items():
        args.append(_plain(value))
        if name == "metadata":  # merged, so concurrent writers of distinct keys both land
            sets.append(f"metadata = metadata || ${len(args)}::jsonb")
        else:
            sets.append(f"{name} = ${len(args)}")
    return sets


def _require_text(field: str, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(field, "must not be empty")
    if "\x00" in value:
        raise ValidationFailed(field, "must not contain NUL characters")
