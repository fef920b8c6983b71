"""A route's spawn_agent step over the fleet's capacity: the spawn is queued (no task yet),
and the step says so instead of failing on the task it does not have (it read
result.task.id, an AttributeError on None, and the step failed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fleet_tui.domain.models import SpawnRequest
from fleet_tui.engine.events.adapters import StepContext, spawn_agent
from fleet_tui.engine.events.policy import Sequence, Step
from fleet_tui.engine.session import step_services
from tests.fixtures.engine import operator


async def test_a_spawn_step_over_capacity_reports_its_spawn_queued(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    await conductor.start()
    op = operator()
    conductor.governor.fleet_capacity = 1
    first = await conductor.spawn(op, SpawnRequest(description="takes the only slot\nFLEET-DEMO: stall 30",
                                                   repo=str(git_repo)))
    assert first.task is not None
    step = Step(name="spawn", adapter="spawn_agent", params={"description": "waits its turn", "repo": str(git_repo)})
    ctx = StepContext(operator_id=op.id, event_type="manual.test", sequence=Sequence(name="spawns", steps=[step]),
                      context={}, services=step_services(conductor))
    out = await spawn_agent(step, ctx)
    assert out["status"] == "queued" and out["task_id"] is None and out["queue_id"] > 0, out
