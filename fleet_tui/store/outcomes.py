"""Outcomes of agent runs, for reputation queries and metrics.

An attempt (a fleet_executions row) succeeded when it is its task's latest attempt and the
task reached ready or merged; it failed when a later attempt superseded it (a retry means
it did not deliver) or when it is the latest and the task is failed, rejected or abandoned.
Running and cancelled attempts count for neither."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fleet_tui.domain.models import Operator

if TYPE_CHECKING:
    from fleet_tui.store.db import Database

# the definition is fleet_outcome (sql/013), which also keeps the fleet's counts per route
_SUCCESS = "fleet_outcome(e.attempt, t.status, t.retry_count) = 'success'"
_FAILURE = "fleet_outcome(e.attempt, t.status, t.retry_count) = 'failure'"


@dataclass(frozen=True)
class OutcomeCounts:
    successes: int
    failures: int


async def outcome_counts(db: Database, *, operator: Operator, agent: str, model: str | None,
                         task_type: str | None) -> OutcomeCounts:
    """Counts over the history the operator may see (its own; an admin's: the fleet's)."""
    async with db.tenant(operator, kind="read") as conn:
        row = await conn.fetchrow(
            f"SELECT count(*) FILTER (WHERE {_SUCCESS}) AS successes,"
            f" count(*) FILTER (WHERE {_FAILURE}) AS failures"
            " FROM fleet_executions e JOIN fleet_tasks t ON t.id = e.task_id"
            " WHERE e.agent = $1 AND ($2::text IS NULL OR e.model = $2)"
            " AND ($3::text IS NULL OR e.task_type = $3)",
            agent, model, task_type,
        )
    return OutcomeCounts(successes=int(row["successes"]), failures=int(row["failures"]))
