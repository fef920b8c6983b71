"""The registry's own history, as routing, budgets and prompts need it.

Outcome counts per (agent, model) for a task type use the definitions of outcomes.py: an
attempt succeeded when it is its task's latest and the task reached ready or merged; it
failed when a later attempt superseded it or the task ended failed/rejected/abandoned.
A run without a model is keyed by its agent name (as routing keys a profile's default).
These read the whole fleet's history (system scope): reputation belongs to the fleet. The
counts, costs and spend are kept by triggers (fleet_route_stats, fleet_spend: sql/013), so
a spawn reads a few rows however long the history is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from fleet_tui.store.db import system_read

if TYPE_CHECKING:
    import asyncpg

    from fleet_tui.store.db import Database

    Source: TypeAlias = Database | asyncpg.Connection  # a scope of its own, or the caller's connection


@dataclass(frozen=True)
class RouteCounts:
    agent: str
    model: str
    successes: int
    failures: int


async def route_counts(db: Source, *, task_type: str) -> list[RouteCounts]:
    """Every (agent, model) with an outcome on this task type, best first."""
    async with system_read(db) as conn:
        rows = await conn.fetch(
            "SELECT agent, model, successes, failures FROM fleet_route_stats"
            " WHERE task_type = $1 AND (successes > 0 OR failures > 0) ORDER BY 3 DESC, 4, 1, 2",
            task_type,
        )
    return [RouteCounts(r["agent"], r["model"], int(r["successes"]), int(r["failures"])) for r in rows]


async def one_route_counts(db: Source, *, agent: str, model: str | None, task_type: str) -> RouteCounts:
    """Counts of one (agent, model); model None means runs recorded without a model."""
    key = model or agent
    async with system_read(db) as conn:
        row = await conn.fetchrow(
            "SELECT successes, failures FROM fleet_route_stats WHERE task_type = $1 AND agent = $2 AND model = $3",
            task_type, agent, key)
    return RouteCounts(agent, key, int(row["successes"]) if row else 0, int(row["failures"]) if row else 0)


async def spent_usd(db: Source, *, operator_id: str) -> float:
    """What the operator's runs cost so far, from what the agents reported."""
    async with system_read(db) as conn:
        value = await conn.fetchval("SELECT spent_usd FROM fleet_spend WHERE operator_id = $1", operator_id)
    return float(value or 0)


async def average_run_cost(db: Source) -> dict[tuple[str, str], float]:
    """Mean reported cost of a finished run per (agent, model), fleet-wide."""
    async with system_read(db) as conn:
        rows = await conn.fetch(
            "SELECT agent, model, sum(cost_usd) / sum(costed_runs) AS cost FROM fleet_route_stats"
            " GROUP BY 1, 2 HAVING sum(costed_runs) > 0")
    return {(r["agent"], r["model"]): float(r["cost"]) for r in rows}


async def credit_budget(db: Source, *, operator_id: str) -> float | None:
    """The operator's credit budget (fleet_operators.credit_budget); None when unset."""
    async with system_read(db) as conn:
        value = await conn.fetchval("SELECT credit_budget FROM fleet_operators WHERE id = $1", operator_id)
    return None if value is None else float(value)


async def set_credit_budget(db: Database, *, operator_id: str, usd: float | None) -> None:
    async with db.system() as conn:
        await conn.execute(
            "INSERT INTO fleet_operators (id, credit_budget) VALUES ($1, $2)"
            " ON CONFLICT (id) DO UPDATE SET credit_budget = EXCLUDED.credit_budget",
            operator_id, usd)


async def similar_tasks(db: Source, *, operator_id: str, repo: str, task_type: str,
                        exclude_id: str, limit: int = 30) -> list[dict[str, Any]]:
    """Recent tasks of the same type on the same repo that got somewhere (or failed), of
    the requesting operator only: another operator's text never enters this one's prompt
    (even an admin's prompt holds only its own history)."""
    async with system_read(db) as conn:
        rows = await conn.fetch(
            "SELECT id, description, status, agent, model, failure_reason FROM fleet_tasks"
            " WHERE operator_id = $1 AND repo = $2 AND task_type = $3 AND id <> $4"
            " AND status IN ('ready', 'merged', 'failed', 'rejected', 'abandoned')"
            " ORDER BY updated_at DESC LIMIT $5",
            operator_id, repo, task_type, exclude_id, limit)
    return [dict(r) for r in rows]


async def oom_attempts(db: Source, *, task_id: str) -> int:
    async with system_read(db) as conn:
        return int(await conn.fetchval(
            "SELECT count(*) FROM fleet_executions WHERE task_id = $1 AND failure = 'oom'", task_id))


async def usage_pauses(db: Source) -> dict[str, datetime]:
    """Agents whose account hit a usage limit, with when it resets: the latest reset time of
    their tasks waiting for one (retrying, usage_limited, metadata.retry_at still ahead)."""
    async with system_read(db) as conn:
        rows = await conn.fetch(
            "SELECT agent, max((metadata->>'retry_at')::timestamptz) AS until FROM fleet_tasks"
            " WHERE status = 'retrying' AND failure_reason = 'usage_limited' AND agent IS NOT NULL"
            " AND metadata ? 'retry_at' AND (metadata->>'retry_at')::timestamptz > now() GROUP BY agent")
    return {row["agent"]: row["until"] for row in rows}
