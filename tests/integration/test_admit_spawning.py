"""A fresh task is admitted straight into spawning (sql/014): the saga's first move (branch,
worktree path, the route as metadata and its route_chosen row) is written in the admission's
transaction, with the rows a move writes, instead of a transaction of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fleet_tui.domain.models import SpawnRequest
from fleet_tui.domain.status import TaskStatus
from tests.fixtures.engine import operator


async def test_the_admission_moves_the_task_to_spawning_in_its_own_transaction(make_conductor: Any,
                                                                               git_repo: Path) -> None:
    conductor = await make_conductor()
    result = await conductor.spawn(operator(), SpawnRequest(description="born spawning", repo=str(git_repo)))
    task = result.task
    assert task is not None and task.status == TaskStatus.RUNNING
    assert task.branch == f"fleet/{task.id}" and task.worktree_path and task.metadata["route"]["agent"] == task.agent
    async with conductor.parts.db.system() as conn:
        rows = await conn.fetch(
            "SELECT action, actor, from_status, to_status, version, xmin::text AS tx FROM fleet_audit"
            " WHERE task_id = $1 ORDER BY id", task.id)
        events = await conn.fetch("SELECT event_type, xmin::text AS tx FROM fleet_outbox WHERE task_id = $1"
                                  " ORDER BY id", task.id)
    steps = [(r["action"], r["from_status"], r["to_status"]) for r in rows]
    assert steps[:3] == [("created", None, "proposed"), ("route_chosen", None, None),
                         ("transition", "proposed", "spawning")], steps
    assert rows[1]["actor"] == "conductor" and rows[2]["version"] == rows[0]["version"] + 1
    assert len({r["tx"] for r in rows[:3]}) == 1  # one transaction: the admission's
    assert [e["event_type"] for e in events[:2]] == ["task.proposed", "task.spawning"]
    assert events[0]["tx"] == events[1]["tx"] == rows[0]["tx"]
