"""The monitor asks GitHub (the gh stand-in) about a pending change's CI per change with a
backoff from 30 s, not every cycle; and the fleet's gh budget, kept in PostgreSQL, caps the
calls of every conductor together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fleet_tui.domain.models import CIStatus, TaskPatch
from fleet_tui.domain.status import TaskStatus
from fleet_tui.domain.models import SYSTEM
from fleet_tui.engine.conductor import Conductor
from fleet_tui.store import leases
from tests.fixtures.engine import operator
from tests.fixtures.fake_gh import FakeGh

PENDING = [{"name": "build", "state": "IN_PROGRESS", "bucket": "pending"}]


async def waiting_change(conductor: Conductor, repo: Path, number: int) -> str:
    """A task whose change is PR #number with CI pending, as the monitor finds it."""
    task, _ = await conductor.registry.admit_and_insert(
        operator(), 10, description=f"change {number}", repo=str(repo), base_branch="main",
        task_type="feature", branch=f"task/{number}")
    for target, patch in ((TaskStatus.SPAWNING, None), (TaskStatus.RUNNING, None),
                          (TaskStatus.PR_CREATED, TaskPatch(pr_number=number, ci_status=CIStatus.PENDING))):
        task = await conductor.registry.transition(task.id, task.version, target, operator=SYSTEM, patch=patch)
    return task.id


def scenario(fake_gh: FakeGh, numbers: range) -> None:
    fake_gh.scenario(prs=[{"number": n, "headRefName": f"task/{n}", "url": f"https://github.com/a/b/pull/{n}",
                           "headRefOid": "0" * 40, "state": "OPEN"} for n in numbers],
                     checks={str(n): PENDING for n in numbers})


def checks_calls(fake_gh: FakeGh) -> int:
    return sum(1 for call in fake_gh.calls() if call[:2] == ["pr", "checks"])


async def test_pending_ci_is_polled_with_backoff_not_every_cycle(
        make_conductor: Any, git_repo: Path, fake_gh: FakeGh) -> None:
    scenario(fake_gh, range(12, 13))
    conductor = await make_conductor(forge__kind="github")
    task_id = await waiting_change(conductor, git_repo, 12)
    await conductor.start(monitor=False)
    for _ in range(20):  # 20 cycles: a minute of them at the default 3 s
        await conductor.monitor.run_cycle()
    assert checks_calls(fake_gh) == 1, fake_gh.calls()
    assert (await conductor.registry.get(task_id, operator=SYSTEM)).status == TaskStatus.PR_CREATED


async def test_the_fleet_gh_budget_caps_every_conductor_together(
        make_conductor: Any, git_repo: Path, fake_gh: FakeGh) -> None:
    scenario(fake_gh, range(1, 7))
    settings = dict(forge__kind="github", forge__gh_budget_per_hour=4, monitor__claim_slack=0)
    first = await make_conductor(**settings)
    second = await make_conductor(same_db=first, **settings)
    for number in range(1, 7):
        await waiting_change(first, git_repo, number)
    for conductor in (first, second):  # both known before either claims: three tasks each
        await leases.register(conductor.parts.db, conductor.conductor_id, "host", 1)
    for conductor in (first, second):
        await conductor.start(monitor=False)
    degraded = set()
    for _ in range(10):
        for conductor in (first, second):
            await conductor.monitor.run_cycle()
            degraded |= set(conductor.monitor.degraded)  # check -> reason
    assert len(first.monitor.held) == len(second.monitor.held) == 3
    assert len(fake_gh.calls()) == 4, fake_gh.calls()  # 4 of the fleet's, not 4 each
    assert "forge" in degraded  # the budget refused the rest
