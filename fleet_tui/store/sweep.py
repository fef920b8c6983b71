"""Which finished tasks still hold a worktree past the retention period."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fleet_tui.domain.models import TaskRecord
from fleet_tui.domain.status import TERMINAL_STATUSES
from fleet_tui.store.records import TASK_SELECT, to_task

if TYPE_CHECKING:
    from fleet_tui.store.db import Database


async def expired_worktrees(db: Database, retention_s: float, limit: int = 200) -> list[TaskRecord]:
    async with db.system(kind="read") as conn:
        rows = await conn.fetch(
            f"SELECT {TASK_SELECT} FROM fleet_tasks WHERE status = ANY($1::text[])"
            " AND worktree_path IS NOT NULL AND completed_at < now() - make_interval(secs => $2)"
            " ORDER BY completed_at LIMIT $3",
            sorted(str(s) for s in TERMINAL_STATUSES), retention_s, limit)
    return [to_task(r) for r in rows]
