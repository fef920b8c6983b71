"""fleet_audit: an append-only history (the app role may not update or delete it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from fleet_tui.domain.models import Operator

if TYPE_CHECKING:
    from fleet_tui.store.db import Database


@dataclass(frozen=True)
class AuditEntry:
    id: int
    task_id: str | None
    operator_id: str
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    version: int | None
    detail: dict[str, Any]
    trace_id: str | None
    created_at: datetime


async def append(
    conn: asyncpg.Connection,
    *,
    operator_id: str,
    action: str,
    actor: str = "system",
    task_id: str | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    version: int | None = None,
    detail: dict[str, Any] | None = None,
    trace_id: str | None = None,
) -> int:
    """Write one audit row inside the caller's transaction; returns its id."""
    audit_id: int = await conn.fetchval(
        "INSERT INTO fleet_audit (task_id, operator_id, actor, action, from_status, to_status,"
        " version, detail, trace_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        task_id, operator_id, actor, action,
        None if from_status is None else str(from_status),
        None if to_status is None else str(to_status),
        version, detail or {}, trace_id,
    )
    return audit_id


async def list_for_task(db: Database, task_id: str, *, operator: Operator | None) -> list[AuditEntry]:
    """The task's history, oldest first, as far as `operator` may see it (None: system)."""
    scope = db.system(kind="read") if operator is None else db.tenant(operator, kind="read")
    async with scope as conn:
        rows = await conn.fetch(
            "SELECT id, task_id, operator_id, actor, action, from_status, to_status, version,"
            " detail, trace_id, created_at FROM fleet_audit WHERE task_id = $1 ORDER BY id",
            task_id,
        )
    return [AuditEntry(**dict(row)) for row in rows]


class AuditLog:
    """Read side bound to a Database, for callers that hold one (engine, faces via engine)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def list_for_task(self, task_id: str, *, operator: Operator | None) -> list[AuditEntry]:
        return await list_for_task(self.db, task_id, operator=operator)
