"""POST /api/events on two headless conductors sharing one database, over real HTTP, signed
with the Standard Webhooks scheme: a valid event is accepted under its sender's id (with the
current key and with the previous one, during a rotation); the same request replayed, to the
same conductor or to the other, is refused; an expired (or far-future) timestamp is refused
even with a good signature."""

from __future__ import annotations

import json
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx

from fleet_tui.domain import webhooks
from tests.e2e.headless import headless, headless_env

CURRENT_KEY = "whsec_Y3VycmVudC1rZXktZm9yLWV2ZW50cy0wMTIz"
PREVIOUS_KEY = "previous-events-key-4567"


async def test_valid_replayed_and_expired_events_across_two_conductors(fresh_database: Any,
                                                                      tmp_path: Path) -> None:
    db_url = await fresh_database()
    body = json.dumps({"type": "ci.failed", "source": "github", "summary": "main is red"}).encode()
    async with AsyncExitStack() as stack:
        urls = []
        for name in ("a", "b"):
            env = headless_env(db_url, tmp_path / name, api__events_secret=f"{CURRENT_KEY} {PREVIOUS_KEY}")
            (tmp_path / name).mkdir()
            _, url = await stack.enter_async_context(headless(env, tmp_path / name / "server.log"))
            urls.append(url)
        a, b = [await stack.enter_async_context(httpx.AsyncClient(base_url=u, timeout=30)) for u in urls]

        valid = webhooks.sign([CURRENT_KEY], "msg_ci_1", body, now=time.time())
        accepted = await a.post("/api/events", content=body, headers=valid)
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["id"] == "msg_ci_1"

        for client in (a, b):  # the captured request, byte for byte, to either conductor
            replayed = await client.post("/api/events", content=body, headers=valid)
            assert replayed.status_code == 409, replayed.text
            assert "msg_ci_1" in replayed.json()["detail"] and "replayed" in replayed.json()["detail"]

        old_key = webhooks.sign([PREVIOUS_KEY], "msg_ci_2", body, now=time.time())
        assert (await b.post("/api/events", content=body, headers=old_key)).status_code == 202

        for moment in (time.time() - 301, time.time() + 301):
            stale = webhooks.sign([CURRENT_KEY], f"msg_ci_{int(moment)}", body, now=moment)
            refused = await a.post("/api/events", content=body, headers=stale)
            assert refused.status_code == 401, refused.text
            assert "webhook-timestamp" in refused.json()["detail"]

        forged = {**webhooks.sign(["not-our-key"], "msg_ci_3", body, now=time.time())}
        assert (await b.post("/api/events", content=body, headers=forged)).status_code == 401
        # The forged id was never recorded: its rightful sender can still deliver it.
        genuine = webhooks.sign([CURRENT_KEY], "msg_ci_3", body, now=time.time())
        assert (await b.post("/api/events", content=body, headers=genuine)).status_code == 202
