"""The headless API as a real process: SIGTERM 50 ms into a burst answers every request it
had received; with its database cut off for 10 s it answers 503 with Retry-After (never
500), /healthz says the database is down, and afterwards no task is lost or handled twice."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conductors import Fleet, bearer
from tests.fixtures.engine import kill_tmux_server
from tests.fixtures.tcp_proxy import TcpProxy


def new_fleet(db_url: str, root: Path, **env: str) -> Fleet:
    return Fleet(db_url, root, f"fleet-test-{uuid.uuid4().hex[:8]}",
                 extra_env={"FLEET_REVIEW__ENABLED": "false",
                            "FLEET_GOVERNOR__TIER_LIMITS": json.dumps({"sovereign": 100}), **env})


async def test_sigterm_50ms_into_a_burst_answers_every_request(
        fresh_database: Any, tmp_path: Path, git_repo: Path) -> None:
    fleet = new_fleet(await fresh_database(), tmp_path)
    conductor = fleet.start_conductor("c0")
    try:
        url = await conductor.api_url()
        headers = bearer(fleet, "ops", "sovereign")
        # one connection per request, as 150 separate clients would
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits) as client:
            def request(n: int) -> Any:
                if n % 15 == 0:
                    return client.post("/api/fleet/spawn", json={
                        "description": f"burst {n}\nFLEET-DEMO: stall 60", "repo": str(git_repo), "agent": "demo"})
                return client.get("/api/fleet/status")
            burst = [asyncio.create_task(request(n)) for n in range(150)]
            await asyncio.sleep(0.05)
            conductor.signal(signal.SIGTERM)
            answers = await asyncio.gather(*burst, return_exceptions=True)
        failed = [repr(a) for a in answers if isinstance(a, BaseException)]
        assert failed == [], f"{len(failed)} of 150 without an answer: {failed[:3]}\n{conductor.tail(20)}"
        codes = sorted({a.status_code for a in answers})  # type: ignore[union-attr]
        assert set(codes) <= {200, 201}, codes
        assert await asyncio.to_thread(conductor.proc.wait, 60) == 0
    finally:
        conductor.kill9()
        kill_tmux_server(fleet.socket)


@pytest.mark.slow
async def test_a_database_outage_answers_503_and_loses_nothing(
        fresh_database: Any, tmp_path: Path, git_repo: Path) -> None:
    db_url = await fresh_database()
    host_port, name = db_url.split("@", 1)[1].split("/", 1)
    host, port = host_port.split(":")
    proxy = TcpProxy(host, int(port))
    await proxy.start()
    fleet = new_fleet(db_url.replace(host_port, f"127.0.0.1:{proxy.port}"), tmp_path)
    direct = Fleet(db_url, tmp_path, fleet.socket)  # the test's own view, around the proxy
    conductor = fleet.start_conductor("c0")
    try:
        url = await conductor.api_url()
        async with httpx.AsyncClient(base_url=url, headers=bearer(fleet, "ops", "sovereign"), timeout=60) as client:
            ids = []
            for n in range(3):
                reply = await client.post("/api/fleet/spawn", json={
                    "description": f"through the outage {n}\nFLEET-DEMO: sleep 14", "repo": str(git_repo),
                    "agent": "demo"})
                assert reply.status_code == 201 and reply.json()["task"]["status"] == "running", reply.text
                ids.append(reply.json()["task"]["id"])
            assert (await client.get("/healthz")).status_code == 200

            await proxy.cut()  # every connection killed, and the database unreachable for 10 s
            cut_at = time.monotonic()
            seen: list[httpx.Response] = []
            while time.monotonic() - cut_at < 10:
                for call in (client.get("/api/fleet/status"), client.get(f"/api/fleet/tasks/{ids[0]}"),
                             client.post("/api/fleet/spawn", json={
                                 "description": f"while down {len(seen)}", "repo": str(git_repo), "agent": "demo"}),
                             client.get("/healthz")):
                    seen.append(await call)
                await asyncio.sleep(0.3)
            await proxy.restore()

            codes = sorted({r.status_code for r in seen})
            assert codes == [503], (codes, [r.text for r in seen if r.status_code != 503][:3])
            assert all(r.headers.get("retry-after") for r in seen)
            health = [r.json() for r in seen if r.request.url.path == "/healthz"]
            assert all(h["status"] == "database unavailable" and h["database"] != "ok" for h in health), health[:2]
            details = {r.json()["detail"] for r in seen if r.request.url.path != "/healthz"}
            assert all(d.startswith("database unavailable") and "\n" not in d for d in details), details

            async def healthy() -> bool:
                return (await client.get("/healthz")).status_code == 200
            deadline = time.monotonic() + 30
            while not await healthy():
                assert time.monotonic() < deadline, conductor.tail(20)
                await asyncio.sleep(0.2)

        async def all_found() -> bool:
            rows = await direct.query("SELECT status FROM fleet_tasks WHERE id = ANY($1::text[])", ids)
            assert not {r["status"] for r in rows} & {"failed", "abandoned", "cancelled"}, [dict(r) for r in rows]
            return {r["status"] for r in rows} <= {"pr_created", "reviewing", "ready"}
        deadline = time.monotonic() + 60
        while not await all_found():
            assert time.monotonic() < deadline, conductor.tail(30)
            await asyncio.sleep(0.2)
        assert await direct.duplicate_transitions() == []
        log = conductor.log.read_text(errors="replace")
        assert "Traceback" not in log, log[-3000:]
        assert '"status": 500' not in log
        assert conductor.proc.poll() is None
    finally:
        conductor.kill9()
        await proxy.cut()
        kill_tmux_server(fleet.socket)
