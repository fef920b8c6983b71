"""fleet_notifications: the record of each notification, written before any delivery,
and the queries the delivery worker claims and settles rows with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from fleet_tui.domain.status import TERMINAL_STATUSES

_TERMINAL = sorted(str(s) for s in TERMINAL_STATUSES)
_COLUMNS = "id, task_id, operator_id, type, channel, status, attempts, payload, dedup_key, created_at"


@dataclass(frozen=True)
class NotificationRow:
    id: int
    task_id: str | None
    operator_id: str
    type: str
    channel: str
    status: str
    attempts: int
    payload: dict[str, Any]
    dedup_key: str | None
    created_at: datetime

    @property
    def summary(self) -> str:
        return str(self.payload.get("summary", ""))


def terminal_dedup_key(task_id: str) -> str:
    """One terminal notification per task, whoever records it first (conductor or relay)."""
    return f"task:{task_id}:terminal"


async def record(conn: asyncpg.Connection, *, task_id: str | None, operator_id: str, type: str,
                 summary: str, channel: str = "all", dedup_key: str | None = None) -> int | None:
    """Insert a pending notification. A repeated dedup_key is a no-op returning None."""
    notification_id: int | None = await conn.fetchval(
        "INSERT INTO fleet_notifications (task_id, operator_id, type, channel, payload, dedup_key)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
        task_id, operator_id, type, channel, {"summary": summary}, dedup_key,
    )
    return notification_id


async def record_terminal(conn: asyncpg.Connection, *, task_id: str, operator_id: str, type: str,
                          summary: str) -> int | None:
    """The task's one terminal notification (None if already recorded). The task may have
    been deleted since: the row then keeps no task reference, like any after a delete."""
    notification_id: int | None = await conn.fetchval(
        "INSERT INTO fleet_notifications (task_id, operator_id, type, channel, payload, dedup_key)"
        " VALUES ((SELECT id FROM fleet_tasks WHERE id = $1), $2, $3, 'all', $4, $5)"
        " ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
        task_id, operator_id, type, {"summary": summary, "task_id": task_id}, terminal_dedup_key(task_id))
    return notification_id


async def claim_pending(conn: asyncpg.Connection, worker_id: str, *, limit: int,
                        lease_s: float) -> list[NotificationRow]:
    """Lease pending rows, oldest first; rows leased by a live worker are skipped, a dead
    worker's rows come back when its lease runs out."""
    rows = await conn.fetch(
        f"WITH picked AS (SELECT id FROM fleet_notifications WHERE status = 'pending'"
        f"   AND (claimed_until IS NULL OR claimed_until < now())"
        f"   ORDER BY created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)"
        f" UPDATE fleet_notifications n SET claimed_by = $1,"
        f"   claimed_until = now() + make_interval(secs => $3)"
        f" FROM picked WHERE n.id = picked.id"
        f" RETURNING {', '.join('n.' + c.strip() for c in _COLUMNS.split(','))}",
        worker_id, limit, float(lease_s))
    return sorted((NotificationRow(**dict(r)) for r in rows), key=lambda n: n.id)


async def count_attempt(conn: asyncpg.Connection, notification_id: int, worker_id: str,
                        *, lease_s: float) -> int | None:
    """Before each delivery attempt: attempts + 1 (updated_at by trigger), lease renewed.
    Returns the new count, None when the row is no longer this worker's."""
    attempts: int | None = await conn.fetchval(
        "UPDATE fleet_notifications SET attempts = attempts + 1,"
        " claimed_until = now() + make_interval(secs => $3)"
        " WHERE id = $1 AND claimed_by = $2 RETURNING attempts",
        notification_id, worker_id, float(lease_s))
    return attempts


async def settle(conn: asyncpg.Connection, notification_id: int, worker_id: str, *, sent: bool,
                 last_error: str | None, deliveries: dict[str, Any]) -> bool:
    """sent / failed, the error (already scrubbed by the channels) and what each channel did."""
    done = await conn.fetchval(
        "UPDATE fleet_notifications SET status = $3, last_error = $4,"
        " sent_at = CASE WHEN $3 = 'sent' THEN now() END,"
        " payload = payload || jsonb_build_object('deliveries', $5::jsonb),"
        " claimed_by = NULL, claimed_until = NULL"
        " WHERE id = $1 AND claimed_by = $2 RETURNING id",
        notification_id, worker_id, "sent" if sent else "failed", last_error, deliveries)
    return done is not None


async def get(conn: asyncpg.Connection, notification_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT id, task_id, operator_id, type, channel, status, attempts, last_error, payload,"
        " dedup_key, created_at, updated_at, sent_at FROM fleet_notifications WHERE id = $1",
        notification_id)
    return None if row is None else dict(row)


async def terminal_tasks_without_notification(conn: asyncpg.Connection, *, limit: int = 100) -> list[str]:
    """INV-018: ids of terminal tasks with no terminal notification recorded (should be none)."""
    rows = await conn.fetch(
        "SELECT t.id FROM fleet_tasks t WHERE t.status = ANY($1::text[])"
        " AND NOT EXISTS (SELECT 1 FROM fleet_notifications n WHERE n.task_id = t.id"
        "   AND (n.dedup_key = 'task:' || t.id || ':terminal'"
        "        OR n.type IN ('completed', 'abandoned', 'cancelled')))"
        " ORDER BY t.id LIMIT $2",
        _TERMINAL, limit)
    return [r["id"] for r in rows]
