"""GitHub's rate limit is the fleet's: when `gh` (the stand-in on PATH) answers one
conductor "API rate limit exceeded", a second conductor process of the same fleet makes no
gh call either until the backoff ends (fleet_pause in sql/012)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from tests.e2e.conductors import Fleet
from tests.e2e.test_fleet_limits import wait_until
from tests.fixtures.engine import kill_tmux_server
from tests.fixtures.fake_gh import FakeGh

PENDING = [{"name": "build", "state": "IN_PROGRESS", "bucket": "pending"}]
CHANGES = range(1, 13)  # enough that the second conductor gets a share of them


async def test_a_rate_limit_told_to_one_conductor_stops_every_conductors_gh_calls(
        fresh_database: Any, tmp_path: Path, git_repo: Path, fake_gh: FakeGh) -> None:
    fake_gh.scenario(prs=[{"number": n, "headRefName": f"task/{n}", "url": f"https://github.com/a/b/pull/{n}",
                           "headRefOid": "0" * 40, "state": "OPEN"} for n in CHANGES],
                     checks={str(n): PENDING for n in CHANGES}, rate_limited_calls=1)
    fleet = Fleet(await fresh_database(), tmp_path, f"fleet-test-{uuid.uuid4().hex[:8]}",
                  extra_env={"FLEET_FORGE__KIND": "github", "FLEET_REVIEW__ENABLED": "false"})
    first = fleet.start_conductor("first")  # the gh stand-in is on the PATH it inherits
    second = None
    try:
        await fleet.conductor_id(first.pid)
        await fleet.query("INSERT INTO fleet_operators (id, tier) VALUES ('ops', 'builder')")
        for n in CHANGES:  # changes waiting for CI, as the monitor finds them
            await fleet.query(
                "INSERT INTO fleet_tasks (id, operator_id, status, description, repo, base_branch, branch,"
                " pr_number, ci_status) VALUES ($1, 'ops', 'pr_created', 'change', $2, 'main', $3, $4, 'pending')",
                uuid.uuid4().hex[:12], str(git_repo), f"task/{n}", n)

        async def told() -> bool:
            return len(fake_gh.calls()) >= 1
        await wait_until(told, 30, "the first gh call (answered: rate limit)")
        await asyncio.sleep(1.5)  # calls the first conductor had already begun end
        before = len(fake_gh.calls())

        second = fleet.start_conductor("second")
        second_id = await fleet.conductor_id(second.pid)

        async def second_holds_changes() -> bool:
            rows = await fleet.query("SELECT count(*) AS n FROM fleet_leases WHERE owner = $1"
                                     " AND expires_at > now()", second_id)
            return rows[0]["n"] > 0
        await wait_until(second_holds_changes, 30, "the second conductor to take a share of the changes")
        await asyncio.sleep(3)  # 15 monitor cycles of each conductor
        assert len(fake_gh.calls()) == before, (fake_gh.calls(), second.tail(20))
        assert "rate limit" in second.tail(400)  # its forge check is degraded, and says why
    finally:
        first.kill9()
        if second is not None:
            second.kill9()
        kill_tmux_server(fleet.socket)
