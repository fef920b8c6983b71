"""A spawn by an operator whose credit budget is spent is a refusal on every face, as a user
meets it: 403 from a headless conductor over real HTTP, exit 4 from the installed `fleet-tui`
console script, one line naming the budget, and no task made (it answered 500 and exit 2)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.headless import FLEET_TUI, headless, headless_env

SPENT = "budget refuses"


def fleet_tui(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(FLEET_TUI), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


async def test_a_spent_budget_is_403_over_http_and_exit_4_at_the_shell(fresh_database: Any, git_repo: Path,
                                                                       tmp_path: Path) -> None:
    env = headless_env(await fresh_database(), tmp_path, budget__default_usd="0", operator__id="spender",
                       operator__tier="builder", operator__is_admin="false")
    minted = fleet_tui(env, tmp_path, "token", "mint", "--operator", "spender", "--tier", "builder", "--json")
    assert minted.returncode == 0, minted.stderr
    bearer = {"Authorization": f"Bearer {json.loads(minted.stdout)['token']}"}
    async with headless(env, tmp_path / "headless.log") as (_, url):
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            refused = await client.post("/api/fleet/spawn", headers=bearer,
                                        json={"description": "x", "repo": str(git_repo), "agent": "demo"})
            assert refused.status_code == 403, refused.text
            assert SPENT in refused.json()["detail"]

            shell = fleet_tui(env, tmp_path, "spawn", "x", "--repo", str(git_repo), "--agent", "demo")
            assert shell.returncode == 4, shell.stderr
            assert shell.stdout == "" and len(shell.stderr.splitlines()) == 1
            assert shell.stderr.startswith("fleet-tui: ") and SPENT in shell.stderr

            status = await client.get("/api/fleet/status", headers=bearer)
            assert status.status_code == 200 and status.json()["tasks"] == []
