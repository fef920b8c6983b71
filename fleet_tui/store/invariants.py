"""Queries behind the fleet invariants (INV-014..INV-018). Each returns offending rows;
an empty list means the invariant holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fleet_tui.domain.status import TERMINAL_NOTIFICATION

if TYPE_CHECKING:
    from fleet_tui.store.db import Database

# The statuses that send a terminal notification and the kinds they send, from domain's one table.
TERMINAL = tuple(str(status) for status in TERMINAL_NOTIFICATION)
TERMINAL_NOTIFICATION_TYPES = tuple(kind for kind, _ in TERMINAL_NOTIFICATION.values())


async def live_counts(db: Database) -> list[dict[str, Any]]:
    async with db.system(kind="read") as conn:
        rows = await conn.fetch(
            "SELECT t.operator_id, coalesce(o.tier, 'observer') AS tier, count(*) AS live"
            " FROM fleet_tasks t LEFT JOIN fleet_operators o ON o.id = t.operator_id"
            " WHERE t.status <> ALL($1::text[]) GROUP BY t.operator_id, o.tier", list(TERMINAL))
    return [dict(r) for r in rows]


async def tasks_spawned(db: Database, task_ids: list[str]) -> set[str]:
    """Those of task_ids whose row exists and was moved to spawning (before any process)."""
    async with db.system(kind="read") as conn:
        rows = await conn.fetch(
            "SELECT DISTINCT task_id FROM fleet_audit WHERE task_id = ANY($1::text[])"
            " AND to_status = 'spawning'", task_ids)
    return {r["task_id"] for r in rows}


async def terminal_without_audit(db: Database) -> list[str]:
    async with db.system(kind="read") as conn:
        rows = await conn.fetch(
            "SELECT t.id FROM fleet_tasks t WHERE t.status = ANY($1::text[]) AND NOT EXISTS"
            " (SELECT 1 FROM fleet_audit a WHERE a.task_id = t.id AND a.to_status = t.status)",
            list(TERMINAL))
    return [r["id"] for r in rows]


async def over_retry_budget(db: Database) -> list[str]:
    async with db.system(kind="read") as conn:
        rows = await conn.fetch("SELECT id FROM fleet_tasks WHERE retry_count > max_retries")
    return [r["id"] for r in rows]


async def terminal_without_notification(db: Database) -> list[str]:
    async with db.system(kind="read") as conn:
        rows = await conn.fetch(
            "SELECT t.id FROM fleet_tasks t WHERE t.status = ANY($1::text[]) AND NOT EXISTS"
            " (SELECT 1 FROM fleet_notifications n WHERE n.task_id = t.id AND n.type = ANY($2::text[]))",
            list(TERMINAL), list(TERMINAL_NOTIFICATION_TYPES))
    return [r["id"] for r in rows]
