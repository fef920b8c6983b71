"""Shared by the outbox, listener, NATS and notifier tests: a fresh migrated database per
test (the relay claims every pending row, so tests must not share one), event writers,
and a loopback HTTP receiver."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence

import pytest_asyncio

from tests.fixtures.loopback import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleet_tui.config import OutboxSettings
from fleet_tui.store import outbox as outbox_store
from fleet_tui.store.db import Database
from tests.fixtures.db import settings_for

OPERATOR = "op-outbox"


@pytest_asyncio.fixture
async def outbox_db(fresh_database: Any, tmp_path: Path) -> AsyncIterator[Database]:
    url = await fresh_database()
    db = await Database.open(settings_for(url, tmp_path / "data"))
    try:
        yield db
    finally:
        await db.close()


def fast_outbox(**changes: Any) -> OutboxSettings:
    base: dict[str, Any] = dict(poll_s=0.2, lease_s=5.0, backoff_base_s=0.05, backoff_cap_s=0.2)
    base.update(changes)
    return OutboxSettings(**base)


async def write_events(db: Database, count: int, *, event_type: str = "test.event",
                       operator_id: str = OPERATOR, per_tx: int = 1, wait: bool = True) -> list[int]:
    """count events, per_tx in each transaction; returns their outbox ids. wait: until the
    snapshot horizon has passed them (other sessions' transactions anywhere on the server
    hold it back for a moment)."""
    ids: list[int] = []
    for start in range(0, count, per_tx):
        async with db.system() as conn:
            for n in range(start, min(start + per_tx, count)):
                ids.append(await outbox_store.enqueue(conn, event_type, {"n": n}, task_id=None,
                                                      operator_id=operator_id))
    if wait:
        await past_horizon(db)
    return ids


async def past_horizon(db: Database, timeout_s: float = 30.0) -> None:
    """Until every committed outbox row lies below the snapshot horizon."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        async with db.system() as conn:
            done = await conn.fetchval(
                "SELECT coalesce(max(txid::text::bigint), 0) < pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
                " FROM fleet_outbox")
        if done or loop.time() > deadline:
            return
        await asyncio.sleep(0.01)


async def event_ids(db: Database) -> dict[int, str]:
    async with db.system() as conn:
        rows = await conn.fetch("SELECT id, event_id::text AS e FROM fleet_outbox")
    return {r["id"]: r["e"] for r in rows}


class RecordingSink:
    """An in-process receiver (the test's side effect): every envelope it is handed."""

    def __init__(self, name: str = "recording", fail: Callable[[Mapping[str, Any]], str | None] | None = None) -> None:
        self.name = name
        self.received: list[dict[str, Any]] = []
        self.calls = 0
        self._fail = fail

    async def deliver(self, events: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        self.calls += 1
        failures: dict[str, str] = {}
        for event in events:
            error = self._fail(event) if self._fail else None
            if error:
                failures[event["event_id"]] = error
            else:
                self.received.append(dict(event))
        return failures

    async def close(self) -> None:
        return None


@dataclass
class HttpReceiver:
    """A loopback HTTP server: records each request (path, headers, body) and answers with
    the next scripted status (204 when the script is empty)."""

    base_url: str = ""
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    on_request: Callable[[Request, bytes], Awaitable[None]] | None = None

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append((request.url.path, dict(request.headers), body))
        if self.on_request is not None:
            await self.on_request(request, body)
        status = self.script.pop(0) if self.script else 204
        return Response(status_code=status)


@pytest_asyncio.fixture
async def http_receiver() -> AsyncIterator[HttpReceiver]:
    state = HttpReceiver()
    app = Starlette(routes=[Route("/{path:path}", state.handle, methods=["POST"])])
    async with serve(app) as base_url:
        state.base_url = base_url
        yield state


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"
