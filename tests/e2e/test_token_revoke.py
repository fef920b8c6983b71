"""`fleet-tui token revoke KID` against two headless conductors sharing one database and one key
directory, each its own process: both accept a token, then, once the console script has
revoked its key, both refuse it within REVOKED_WITHIN_S (the stated time: each conductor's
JWKS cache reloads when the key index changes, so it is the next request), while a token
signed with the key made to replace it is accepted by both."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.headless import FLEET_TUI, headless, headless_env

REVOKED_WITHIN_S = 2.0


def fleet_tui(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(FLEET_TUI), *args], env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


async def test_a_revoked_key_is_refused_by_every_conductor_within_seconds(fresh_database: Any,
                                                                        tmp_path: Path) -> None:
    env = headless_env(await fresh_database(), tmp_path)
    minted = fleet_tui(env, "token", "mint", "--operator", "ops", "--tier", "sovereign", "--json")
    assert minted.returncode == 0, minted.stderr
    token, kid = json.loads(minted.stdout)["token"], json.loads(minted.stdout)["kid"]
    async with AsyncExitStack() as stack:
        clients = []
        for name in ("a", "b"):
            _, url = await stack.enter_async_context(headless(env, tmp_path / f"{name}.log"))
            clients.append(await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30)))
        bearer = {"Authorization": f"Bearer {token}"}
        for client in clients:  # each conductor has the key in its JWKS cache now
            assert (await client.get("/api/fleet/status", headers=bearer)).status_code == 200

        revoked = fleet_tui(env, "token", "revoke", kid)
        assert revoked.returncode == 0, revoked.stderr
        assert revoked.stdout.startswith(f"revoked {kid}") and revoked.stderr == ""  # said once, not twice
        revoked_at = time.monotonic()
        for client in clients:
            while (answer := await client.get("/api/fleet/status", headers=bearer)).status_code != 401:
                assert answer.status_code == 200
                assert time.monotonic() - revoked_at < REVOKED_WITHIN_S, "still accepted"
                await asyncio.sleep(0.1)
            assert "unknown or retired signing key" in answer.json()["detail"]
            jwks = (await client.get("/.well-known/jwks.json")).json()
            assert kid not in {k["kid"] for k in jwks["keys"]}

        again = fleet_tui(env, "token", "mint", "--operator", "ops", "--tier", "sovereign", "--json")
        fresh = {"Authorization": f"Bearer {json.loads(again.stdout)['token']}"}
        assert json.loads(again.stdout)["kid"] != kid
        for client in clients:
            assert (await client.get("/api/fleet/status", headers=fresh)).status_code == 200
    assert fleet_tui(env, "token", "revoke", kid + "x").returncode == 3
