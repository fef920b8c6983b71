"""INV-014..INV-018 on demand: satisfied after real work, and each one reports a
violation planted behind the registry's back (as the owner, bypassing its guards)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import asyncpg

from fleet_tui.domain.models import SpawnRequest, Tier
from fleet_tui.engine.conductor import Conductor
from tests.fixtures.engine import operator


def by_id(results: list[Any]) -> dict[str, Any]:
    return {r.id: r for r in results}


async def plant(conductor: Conductor, sql: str, *args: Any) -> None:
    conn = await asyncpg.connect(conductor.settings.database_url)
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


INSERT_TASK = ("INSERT INTO fleet_tasks (id, operator_id, status, description, repo, base_branch)"
               " VALUES ($1, $2, $3, 'planted', '/r', 'main')")


async def test_invariants_hold_after_real_work_and_each_reports_a_planted_violation(
        make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    op = operator(Tier.BUILDER)
    spawned = await conductor.spawn(op, SpawnRequest(description="one", repo=str(git_repo)))
    await conductor.stop(op, spawned.task.id)
    results = by_id(await conductor.invariants())
    assert sorted(results) == ["INV-014", "INV-015", "INV-016", "INV-017", "INV-018"]
    assert all(r.satisfied for r in results.values()), [r.detail for r in results.values()]

    await plant(conductor, INSERT_TASK, "planted00001", op.id, "running")  # builder: 2 live > 1
    await plant(conductor, INSERT_TASK, "planted00004", op.id, "running")
    await plant(conductor, INSERT_TASK, "planted00002", op.id, "merged")   # no audit, no notification
    socket = conductor.settings.runtime.tmux_socket
    subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-s", "fleet-planted00003", "sleep", "30"],
                   check=True)
    results = by_id(await conductor.invariants())
    assert not results["INV-014"].satisfied and op.id in results["INV-014"].detail
    assert not results["INV-015"].satisfied and "planted00003" in results["INV-015"].detail
    assert not results["INV-016"].satisfied and "planted00002" in results["INV-016"].detail
    assert not results["INV-018"].satisfied and "planted00002" in results["INV-018"].detail
    assert results["INV-017"].satisfied  # the CHECK constraint makes a violation unplantable
    try:
        await plant(conductor, "UPDATE fleet_tasks SET retry_count = max_retries + 1 WHERE id = $1",
                    "planted00001")
    except asyncpg.CheckViolationError as exc:
        assert "fleet_tasks_retry_budget_check" in str(exc)
    else:
        raise AssertionError("retry_count > max_retries was accepted")
