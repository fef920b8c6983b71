"""The counts a spawn reads instead of the whole history (sql/013: fleet_route_stats,
fleet_spend) stay equal to the sums over every execution through each kind of change:
outcomes reached and left, retries superseding attempts, costs reported and resumed runs
adding to them, executions and tasks deleted; a drifted count is repaired by the recount."""

from __future__ import annotations

from typing import Any

import asyncpg

from fleet_tui.store import migrations

TRUTH_ROUTES = """
    SELECT e.task_type, e.agent, coalesce(e.model, e.agent) AS model,
           count(*) FILTER (WHERE e.attempt = t.retry_count + 1 AND t.status IN ('ready', 'merged')) AS successes,
           count(*) FILTER (WHERE e.attempt < t.retry_count + 1 OR (e.attempt = t.retry_count + 1
                            AND t.status IN ('failed', 'rejected', 'abandoned'))) AS failures,
           count(e.cost_usd) AS costed_runs, coalesce(sum(e.cost_usd), 0) AS cost_usd
      FROM fleet_executions e JOIN fleet_tasks t ON t.id = e.task_id GROUP BY 1, 2, 3"""
TRUTH_SPEND = "SELECT operator_id, sum(cost_usd) AS spent_usd FROM fleet_executions WHERE cost_usd IS NOT NULL GROUP BY 1"
NONZERO = lambda row: any(row[k] for k in ("successes", "failures", "costed_runs", "cost_usd"))  # noqa: E731


async def figures(conn: asyncpg.Connection) -> tuple[Any, Any]:
    """(kept, truth) for both tables, zero rows left out."""
    def rows(records: list[asyncpg.Record], key: tuple[str, ...]) -> dict[tuple[Any, ...], dict[str, Any]]:
        return {tuple(r[k] for k in key): {k: v for k, v in dict(r).items() if k not in key} for r in records}
    route_key, spend_key = ("task_type", "agent", "model"), ("operator_id",)
    kept = (rows([r for r in await conn.fetch("SELECT * FROM fleet_route_stats") if NONZERO(r)], route_key),
            rows([r for r in await conn.fetch("SELECT * FROM fleet_spend") if r["spent_usd"]], spend_key))
    truth = (rows([r for r in await conn.fetch(TRUTH_ROUTES) if NONZERO(r)], route_key),
             rows(await conn.fetch(TRUTH_SPEND), spend_key))
    return kept, truth


async def test_counts_follow_every_change_and_the_recount_repairs_a_drift(fresh_database: Any) -> None:
    conn = await asyncpg.connect(await fresh_database())
    try:
        await migrations.upgrade_conn(conn)
        await conn.execute("SELECT set_config('app.is_admin', 'true', false)")

        async def task(tid: str, op: str, task_type: str = "feature") -> None:
            await conn.execute("INSERT INTO fleet_tasks (id, operator_id, description, repo, base_branch, task_type)"
                               " VALUES ($1, $2, 'd', '/r', 'main', $3)", tid, op, task_type)

        async def execution(tid: str, op: str, attempt: int, agent: str, model: str | None,
                            cost: float | None = None, task_type: str = "feature") -> None:
            await conn.execute("INSERT INTO fleet_executions (task_id, operator_id, attempt, agent, model, task_type,"
                               " runtime, cost_usd) VALUES ($1, $2, $3, $4, $5, $6, 'tmux', $7)",
                               tid, op, attempt, agent, model, task_type, cost)

        async def move(tid: str, status: str, retry_count: int | None = None) -> None:
            await conn.execute("UPDATE fleet_tasks SET status = $2, retry_count = coalesce($3, retry_count)"
                               " WHERE id = $1", tid, status, retry_count)

        steps = [
            lambda: task("aaaaaa", "ann"), lambda: execution("aaaaaa", "ann", 1, "demo", None, 0.1),
            lambda: move("aaaaaa", "running"), lambda: move("aaaaaa", "ready"), lambda: move("aaaaaa", "merged"),
            lambda: task("bbbbbb", "bob", "bug_fix"), lambda: execution("bbbbbb", "bob", 1, "claude", "opus", 0.25, "bug_fix"),
            lambda: move("bbbbbb", "failed"), lambda: move("bbbbbb", "retrying", 1),  # attempt 1 superseded
            lambda: execution("bbbbbb", "bob", 2, "claude", "opus", None, "bug_fix"),
            lambda: move("bbbbbb", "ready"), lambda: move("bbbbbb", "rejected"), lambda: move("bbbbbb", "retrying", 2),
            lambda: execution("bbbbbb", "bob", 3, "codex", "gpt-5-codex", 0.5, "bug_fix"), lambda: move("bbbbbb", "merged"),
            lambda: conn.execute("UPDATE fleet_executions SET cost_usd = cost_usd + 0.2 WHERE task_id = 'aaaaaa'"),
            lambda: conn.execute("UPDATE fleet_executions SET cost_usd = 0.05 WHERE task_id = 'bbbbbb' AND attempt = 2"),
            lambda: conn.execute("UPDATE fleet_executions SET model = 'demo-large' WHERE task_id = 'aaaaaa'"),
            lambda: task("cccccc", "ann"), lambda: execution("cccccc", "ann", 1, "demo", "demo-large", 1.0),
            lambda: move("cccccc", "abandoned"),
            lambda: conn.execute("DELETE FROM fleet_executions WHERE task_id = 'bbbbbb' AND attempt = 3"),
            lambda: conn.execute("DELETE FROM fleet_tasks WHERE id = 'cccccc'"),  # its executions go by cascade
            lambda: conn.execute("DELETE FROM fleet_tasks WHERE id = 'bbbbbb'"),
        ]
        for number, step in enumerate(steps):
            await step()
            kept, truth = await figures(conn)
            assert kept == truth, f"after step {number}"
        assert (await figures(conn))[0][0], "the history left counts to compare"
        assert await conn.fetchval("SELECT fleet_history_recount()") == 0

        drifted = await conn.execute("UPDATE fleet_route_stats SET successes = successes + 4 WHERE agent = 'demo'")
        drifted_spend = await conn.execute("UPDATE fleet_spend SET spent_usd = 99 WHERE operator_id = 'ann'")
        assert (drifted, drifted_spend) == ("UPDATE 2", "UPDATE 1")  # demo and demo/demo-large; ann
        assert await conn.fetchval("SELECT fleet_history_recount()") == 3
        kept, truth = await figures(conn)
        assert kept == truth
    finally:
        await conn.close()
