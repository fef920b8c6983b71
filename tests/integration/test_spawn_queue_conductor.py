"""Over fleet capacity the conductor queues spawn requests and its monitor admits them,
highest priority first, as room frees; a per-operator rate limit refuses floods."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from fleet_tui.domain.errors import BudgetRefused, PermissionDeniedError
from fleet_tui.domain.models import SpawnRequest
from fleet_tui.domain.status import TaskStatus
from fleet_tui.domain.models import SYSTEM
from fleet_tui.store import reputation as history
from tests.fixtures.engine import operator


async def test_over_capacity_requests_queue_and_are_admitted_by_priority(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor(governor__fleet_capacity=1)
    op = operator()
    first = await conductor.spawn(op, SpawnRequest(description="holds the slot\nFLEET-DEMO: stall 60",
                                                   repo=str(git_repo)))
    assert first.task is not None and first.task.status == TaskStatus.RUNNING
    low = await conductor.spawn(op, SpawnRequest(description="low", repo=str(git_repo), priority=10))
    high = await conductor.spawn(op, SpawnRequest(description="high", repo=str(git_repo), priority=90))
    assert low.queued and high.queued and low.task is None and high.task is None
    assert [e.id for e in await conductor.queue.queued()] == [high.queue_id, low.queue_id]

    await conductor.start()
    await conductor.stop(op, first.task.id)          # room frees: the high-priority one goes first

    async def admitted() -> list[str]:
        tasks = (await conductor.status(SYSTEM, all_operators=True)).tasks
        return [t.description for t in tasks if t.status != TaskStatus.CANCELLED]
    for _ in range(100):
        if await admitted():
            break
        await asyncio.sleep(0.1)
    assert await admitted() == ["high"]
    assert [e.id for e in await conductor.queue.queued()] == [low.queue_id]


async def test_a_flood_of_requests_hits_the_rate_limit(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor(governor__rate_limit=2)
    op = operator()
    for i in range(2):
        await conductor.spawn(op, SpawnRequest(description=f"ok {i}", repo=str(git_repo)))
    with pytest.raises(PermissionDeniedError, match="rate limit"):
        await conductor.spawn(op, SpawnRequest(description="one too many", repo=str(git_repo)))
    other = await conductor.spawn(operator(), SpawnRequest(description="another operator", repo=str(git_repo)))
    assert other.task is not None


async def test_a_request_over_the_rate_limit_is_refused_by_it_not_by_the_budget(make_conductor: Any,
                                                                                git_repo: Path) -> None:
    """The rate limit is taken in the routing reads' transaction: a request over it is refused
    before routing decides, so it never records a budget_exceeded notification; a request
    the budget refuses still counts against the rate."""
    conductor = await make_conductor(governor__rate_limit=1)
    op = operator()
    await history.set_credit_budget(conductor.parts.db, operator_id=op.id, usd=0)
    with pytest.raises(BudgetRefused):
        await conductor.spawn(op, SpawnRequest(description="the budget refuses it", repo=str(git_repo)))
    with pytest.raises(PermissionDeniedError, match="rate limit"):
        await conductor.spawn(op, SpawnRequest(description="one too many", repo=str(git_repo)))
    async with conductor.parts.db.system() as conn:
        notified = await conn.fetchval("SELECT count(*) FROM fleet_notifications WHERE operator_id = $1"
                                       " AND type = 'budget_exceeded'", op.id)
    assert notified == 1
