"""The real app over a real conductor (fresh PostgreSQL, private tmux socket, git repo),
driven in-process through httpx's ASGI transport; tokens minted with the app's keystore.
Test modules import the `api` fixture from here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from pydantic import SecretStr

from fleet_tui.api.app import create_app
from fleet_tui.engine.kit.tokens import mint
from fleet_tui.engine.kit.keys import KeyStore
from fleet_tui.domain.models import Operator, TaskRecord, Tier
from fleet_tui.domain.models import SYSTEM
from fleet_tui.engine.conductor import Conductor
from fleet_tui.engine.session import api_support_for
from tests.fixtures.engine import operator

EVENTS_SECRET = "test-events-secret-0123456789"


@dataclass
class Api:
    conductor: Conductor
    keystore: KeyStore
    client: httpx.AsyncClient
    repo: Path
    stopping: asyncio.Event
    app: Any = None
    operators: dict[str, Operator] = field(default_factory=dict)

    def auth(self, op: Operator, *, audience: str | None = None, ttl_s: int = 600) -> dict[str, str]:
        settings = self.conductor.settings.api
        token = mint(self.keystore, operator_id=op.id, tier=op.tier, is_admin=op.is_admin, ttl_s=ttl_s,
                     issuer=settings.issuer, audience=audience or settings.audience)
        return {"Authorization": f"Bearer {token}"}

    def spawn_body(self, description: str, **extra: Any) -> dict[str, Any]:
        return {"description": description, "repo": str(self.repo), **extra}

    async def spawn(self, op: Operator, description: str, **extra: Any) -> dict[str, Any]:
        response = await self.client.post("/api/fleet/spawn", json=self.spawn_body(description, **extra),
                                          headers=self.auth(op))
        assert response.status_code == 201, response.text
        return response.json()["task"]

    async def wait_for(self, task_id: str, done: Callable[[TaskRecord], bool],
                       timeout_s: float = 30.0) -> TaskRecord:
        deadline = time.monotonic() + timeout_s
        task = await self.conductor.registry.get(task_id, operator=SYSTEM)
        while not done(task):
            assert time.monotonic() < deadline, f"task {task_id} stuck in {task.status}"
            await asyncio.sleep(0.1)
            task = await self.conductor.registry.get(task_id, operator=SYSTEM)
        return task


def new_operator(tier: Tier = Tier.BUILDER, *, admin: bool = False) -> Operator:
    return operator(tier, admin=admin)


NO_IMAGE = "fleet-agent-none:never"  # docker spawns are refused, never run, on any host


@pytest_asyncio.fixture
async def api(make_conductor: Any, git_repo: Path, tmp_path: Path) -> AsyncIterator[Api]:
    conductor = await make_conductor(api__events_secret=[SecretStr(EVENTS_SECRET)], retry__auto=False,
                                     notifications__telegram_bot_token=SecretStr("123:telegram-secret-token"),
                                     runtime__docker_image=NO_IMAGE)  # whatever this host has built
    await conductor.start()
    keystore = KeyStore(conductor.settings.data_dir / "keys")
    keystore.current()
    stopping = asyncio.Event()
    app = create_app(conductor, keystore=keystore, support=lambda: api_support_for(conductor),
                     settings=conductor.settings, stopping=stopping)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fleet.test") as client:
        yield Api(conductor=conductor, keystore=keystore, client=client, repo=git_repo,
                  stopping=stopping, app=app)
