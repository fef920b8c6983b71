"""fleet_executions: one row per agent run (attempt) of a task."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fleet_tui.domain.models import Operator, TaskRecord

if TYPE_CHECKING:
    from fleet_tui.store.db import Database

_COLUMNS = ("id, task_id, attempt, agent, model, task_type, runtime, started_at, finished_at,"
            " duration_ms, exit_code, failure, input_tokens, output_tokens, cached_tokens, total_tokens,"
            " cost_usd, session_id, context_hash, prompt")


async def start(db: Database, task: TaskRecord, *, prompt: str | None = None,
                context_hash: str | None = None) -> None:
    """Open the row of the task's current attempt (idempotent for a relaunch). The prompt
    is kept so that an operator can see what each attempt was told (it holds no secrets)."""
    async with db.system() as conn:
        await open_attempt(conn, task, prompt=prompt, context_hash=context_hash)


async def open_attempt(conn: Any, task: TaskRecord, *, prompt: str | None = None,
                       context_hash: str | None = None) -> None:
    """start() inside the caller's transaction (the move to running's)."""
    await conn.execute(
        "INSERT INTO fleet_executions (task_id, operator_id, attempt, agent, model, task_type,"
        " runtime, prompt, context_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (task_id, attempt) DO UPDATE SET started_at = now(), finished_at = NULL,"
        " prompt = EXCLUDED.prompt, context_hash = EXCLUDED.context_hash",
        task.id, task.operator_id, task.retry_count + 1, task.agent or "unknown", task.model,
        str(task.task_type), str(task.runtime), prompt, context_hash,
    )


def _added(column: str, param: int) -> str:
    """A resumed run (an answer, a granted permission) reopens its attempt's row: what it used
    adds to what the earlier run of the attempt used, which budgets have already counted."""
    return f"CASE WHEN ${param}::numeric IS NULL THEN {column} ELSE COALESCE({column}, 0) + ${param} END"


async def finish(db: Database, task_id: str, *, attempt: int, exit_code: int | None,
                 failure: str | None = None, input_tokens: int | None = None,
                 output_tokens: int | None = None, cost_usd: float | None = None,
                 cached_tokens: int | None = None, total_tokens: int | None = None,
                 session_id: str | None = None) -> None:
    async with db.system() as conn:
        await conn.execute(
            "UPDATE fleet_executions SET finished_at = now(),"
            " duration_ms = (extract(epoch FROM now() - started_at) * 1000)::bigint,"
            " exit_code = $3, failure = $4, input_tokens = " + _added("input_tokens", 5) + ","
            " output_tokens = " + _added("output_tokens", 6) + ", cost_usd = " + _added("cost_usd", 7) + ","
            " cached_tokens = " + _added("cached_tokens", 8) + ", total_tokens = " + _added("total_tokens", 9) + ","
            " session_id = COALESCE($10, session_id)"
            " WHERE task_id = $1 AND attempt = $2 AND finished_at IS NULL",
            task_id, attempt, exit_code, failure, input_tokens, output_tokens, cost_usd,
            cached_tokens, total_tokens, session_id,
        )


async def list_for_task(db: Database, task_id: str, *, operator: Operator | None) -> list[dict[str, Any]]:
    scope = db.system(kind="read") if operator is None else db.tenant(operator, kind="read")
    async with scope as conn:
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM fleet_executions WHERE task_id = $1 ORDER BY attempt", task_id)
    return [dict(row) for row in rows]
