"""Backpressure and dedup: over fleet capacity, spawn requests queue (highest priority, then
oldest, first) and are admitted as room frees; a per-operator rate limit; a dedup window
that merges a repeated event or request; a batch of spawns from a JSON-lines file."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, UTC
from pathlib import Path
from typing import Any
from collections.abc import Awaitable, Callable

from fleet_tui.domain.errors import PermissionDeniedError, RefusedError, ValidationFailed
from fleet_tui.domain.models import Operator, SpawnRequest, TaskRecord, Tier
from fleet_tui.domain.validation import validated
from fleet_tui.engine.ledger.tracing import current_trace_id
from fleet_tui.store import limits as limit_store
from fleet_tui.store import routes as route_store
from fleet_tui.store import spawn_queue as queue_store
from fleet_tui.store.db import Database

log = logging.getLogger(__name__)
WallClock = Callable[[], datetime]
# the one admission decision (Conductor.admit_queued): (its outcome, the task it made or None)
Admit = Callable[["QueuedSpawn", Operator], Awaitable[tuple[str, TaskRecord | None]]]
DEDUP_WINDOW_S = 300.0
DRAIN_SLACK = 20  # entries looked at beyond the room: some may wait on their tier limit


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class QueuedSpawn:
    id: int
    operator_id: str
    priority: int
    request: SpawnRequest
    status: str
    created_at: datetime
    task_id: str | None = None
    dedup_key: str | None = None
    trace_id: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> QueuedSpawn:
        return cls(id=row["id"], operator_id=row["operator_id"], priority=row["priority"],
                   request=SpawnRequest.model_validate(row["request"]), status=row["status"],
                   created_at=row["created_at"], task_id=row["task_id"], dedup_key=row["dedup_key"],
                   trace_id=row.get("trace_id"))


class Deduper:
    """A key seen within the window (from its first sighting) is a duplicate."""

    def __init__(self, db: Database, *, window_s: float = DEDUP_WINDOW_S, wall_clock: WallClock = utc_now) -> None:
        self._db = db
        self.window_s = window_s
        self._wall_clock = wall_clock
        self.merged = 0

    async def first_time(self, operator_id: str, key: str, ref: str | None = None,
                         conn: Any = None) -> tuple[bool, str | None]:
        if not key or len(key) > 200:
            raise ValidationFailed("dedup_key", "must be 1-200 characters")
        if conn is None:
            async with self._db.system() as fresh:
                return await self.first_time(operator_id, key, ref, fresh)
        first, known_ref = await queue_store.see_key(conn, operator_id=operator_id, key=key,
                                                     now=self._wall_clock(), window_s=self.window_s, ref=ref)
        if not first:
            self.merged += 1
        return first, known_ref


class RateLimiter:
    """At most `limit` requests per operator in any `per_s` seconds (sliding window), counted
    in PostgreSQL: one limit for the whole fleet, however many conductors take from it."""

    def __init__(self, db: Database, *, limit: int = 30, per_s: float = 60.0) -> None:
        self._db = db
        self.limit = limit
        self.per_s = per_s
        self.refused = 0

    async def take(self, operator_id: str) -> None:
        """Take one request of operator_id's, in a transaction of its own; raises
        PermissionDeniedError over the limit."""
        async with self._db.system() as conn:
            wait_s = await self.hit(conn, operator_id)
        self.refuse_over(operator_id, wait_s)

    async def hit(self, conn: Any, operator_id: str) -> float:
        """Take one request in the caller's transaction (its key's row stays locked until that
        commits: take it last): 0.0, or seconds to wait (then call refuse_over after the commit)."""
        # not durable: a spawn request counted less after a database crash is harmless, and a
        # flush of the log would cost every spawn a millisecond or more
        return await limit_store.take(conn, f"spawn:{operator_id}", self.limit, self.per_s, durable=False)

    def refuse_over(self, operator_id: str, wait_s: float) -> None:
        if wait_s > 0:
            self.refused += 1
            raise PermissionDeniedError(
                f"rate limit: operator {operator_id} may make {self.limit} spawn requests per "
                f"{self.per_s:g}s; try again in {max(wait_s, 1):.0f}s")


class SpawnQueue:
    def __init__(self, db: Database, *, deduper: Deduper | None = None, wall_clock: WallClock = utc_now) -> None:
        self._db = db
        self._wall_clock = wall_clock
        self.deduper = deduper or Deduper(db, wall_clock=wall_clock)

    async def enqueue(self, request: SpawnRequest, operator: Operator, priority: int | None = None,
                      *, dedup_key: str | None = None) -> tuple[QueuedSpawn | None, bool]:
        """Queue a request; (entry, False), or (the first entry or None, True) when its dedup
        key was seen within the window (merged: nothing queued)."""
        priority = request.priority if priority is None else priority
        if not 0 <= priority <= 100:
            raise ValidationFailed("priority", "must be between 0 and 100")
        created = self._wall_clock()  # equal times are ordered by arrival (id)
        async with self._db.tenant(operator) as conn:
            if dedup_key is not None:
                first, ref = await self.deduper.first_time(operator.id, dedup_key, conn=conn)
                if not first:
                    row = await self._row(conn, ref)
                    return (QueuedSpawn.from_row(row) if row else None), True
            # the drain admits it later as this operator: with the tier it has now
            await route_store.remember_operator(conn, operator.id, str(operator.tier), operator.is_admin)
            row = await queue_store.enqueue(
                conn, operator_id=operator.id, priority=priority, request=request.model_dump(mode="json"),
                dedup_key=dedup_key, trace_id=current_trace_id(), created_at=created)
            if dedup_key is not None:
                await queue_store.set_key_ref(conn, operator_id=operator.id, key=dedup_key, ref=str(row["id"]))
        return QueuedSpawn.from_row(row), False

    async def queued(self, operator: Operator | None = None) -> list[QueuedSpawn]:
        scope = self._db.system(kind="read") if operator is None else self._db.tenant(operator, kind="read")
        async with scope as conn:
            return [QueuedSpawn.from_row(r) for r in await queue_store.list_queued(conn)]

    async def depth(self) -> int:
        async with self._db.system(kind="read") as conn:
            return await queue_store.count_queued(conn)

    async def failed(self, entry: QueuedSpawn, error: str) -> None:
        """A queued request that can never be admitted (its repository vanished, say)."""
        async with self._db.system() as conn:
            await queue_store.fail_queued(conn, entry.id, error[:2000])

    async def drain(self, admit: Admit, room: int) -> list[tuple[QueuedSpawn, str]]:
        """Admit what fits, highest priority then oldest first, through the one admission
        decision, admit (each entry turns 'admitted' in the transaction that makes its
        task): (entry, task id, or what stopped it). An entry its operator's tier limit
        refuses stays in line; the first that finds the fleet full ends the round."""
        outcomes: list[tuple[QueuedSpawn, str]] = []
        if room <= 0:
            return outcomes
        async with self._db.system(kind="read") as conn:
            entries = [QueuedSpawn.from_row(r) for r in await queue_store.list_queued(conn, room + DRAIN_SLACK)]
        for entry in entries:
            try:
                operator = await self._operator(entry.operator_id)
                outcome, task = await admit(entry, operator)
            except (ValidationFailed, RefusedError) as exc:  # a tier limit keeps it queued (admit_queued)
                await self.failed(entry, f"{type(exc).__name__}: {exc}")
                outcomes.append((entry, f"failed: {exc}"))
                continue
            outcomes.append((entry, task.id if task is not None else outcome))
            if outcome == "full":
                break
        return outcomes

    async def _operator(self, operator_id: str) -> Operator:
        async with self._db.system(kind="read") as conn:
            identity = await route_store.operator_identity(conn, operator_id)
        if identity is None:  # no tier to admit it under: guessing one could exceed a limit
            raise PermissionDeniedError(f"operator {operator_id} is unknown to this fleet; its queued"
                                        " request is refused")
        tier, admin = identity
        return Operator(id=operator_id, tier=Tier(tier), is_admin=admin)

    @staticmethod
    async def _row(conn: Any, ref: str | None) -> dict[str, Any] | None:
        if not ref or not ref.isdigit():
            return None
        rows = [r for r in await queue_store.list_queued(conn) if r["id"] == int(ref)]
        return rows[0] if rows else None


def load_batch(path: Path) -> list[SpawnRequest]:
    """Spawn requests from a JSON-lines file (blank lines and # comments skipped); a bad line
    is refused naming its number and field, and nothing from the file is used."""
    requests: list[SpawnRequest] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(f"line {number}", f"is not JSON: {exc.msg}") from None
        try:
            requests.append(validated(SpawnRequest, data))
        except ValidationFailed as exc:
            raise ValidationFailed(f"line {number}: {exc.field}", exc.rule) from None
    return requests


async def enqueue_batch(queue: SpawnQueue, operator: Operator, path: Path) -> list[QueuedSpawn]:
    """Queue every request of the file; they are admitted in priority order, not file order."""
    entries = []
    for request in load_batch(path):
        entry, _ = await queue.enqueue(request, operator, dedup_key=request.idempotency_key)
        if entry is not None:
            entries.append(entry)
    return entries
