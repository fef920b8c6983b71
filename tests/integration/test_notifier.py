"""The notification worker on real PostgreSQL against loopback HTTP (Discord's and
Telegram's paths): pending -> sent / failed, attempts counted on the row before each
attempt, channels independent, the CLI line after the last failure, no secret in the
record, leases, wake-up on insert, and INV-018 end to end (every terminal task gets a
delivered notification)."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from fleet_tui.config import NotificationSettings
from fleet_tui.domain.models import Operator, Tier
from fleet_tui.engine.workers.notifier import NotificationWorker
from fleet_tui.engine.workers.outbox_relay import OutboxRelay, TerminalNotificationSink
from fleet_tui.engine.parts import build_parts
from fleet_tui.infra.channels import CliChannel, DiscordChannel, TelegramChannel
from fleet_tui.store import notifications as notification_store
from fleet_tui.store.db import Database
from fleet_tui.store.tasks import TaskRegistry
from tests.integration.outbox_harness import HttpReceiver, fast_outbox, http_receiver, outbox_db  # noqa: F401

HOOK = "/api/webhooks/987/discord-hook-secret"
TOKEN = "123456:telegram-secret-token"


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
async def client() -> Any:
    async with httpx.AsyncClient() as http:
        yield http


async def record(db: Database, type_: str = "failed", summary: str = "agent exited 1",
                 channel: str = "all") -> int:
    async with db.system() as conn:
        return await notification_store.record(conn, task_id=None, operator_id="op", type=type_,
                                               summary=summary, channel=channel)


async def row(db: Database, notification_id: int) -> dict[str, Any]:
    async with db.system() as conn:
        found = await notification_store.get(conn, notification_id)
    assert found is not None
    return found


def worker(db: Database, channels: list[Any], cli: io.StringIO, sleeps: Sleeps, **kw: Any) -> NotificationWorker:
    return NotificationWorker(db, NotificationSettings(max_attempts=4), channels=channels,
                              fallback=CliChannel(cli), sleep=sleeps, **kw)


async def test_pending_to_sent_with_each_attempt_recorded_before_it(outbox_db: Database, client: Any,
                                                                    http_receiver: HttpReceiver) -> None:
    nid = await record(outbox_db)
    seen_attempts: list[int] = []

    async def look(request: Request, body: bytes) -> None:  # what the row said as the request arrived
        seen_attempts.append((await row(outbox_db, nid))["attempts"])

    http_receiver.on_request = look
    http_receiver.script = [500, 503]
    discord = DiscordChannel(http_receiver.base_url + HOOK, client)
    cli, sleeps = io.StringIO(), Sleeps()
    assert (await row(outbox_db, nid))["status"] == "pending"
    assert await worker(outbox_db, [discord], cli, sleeps).drain() == 1
    final = await row(outbox_db, nid)
    assert final["status"] == "sent" and final["sent_at"] is not None and final["last_error"] is None
    assert final["attempts"] == 3
    assert seen_attempts == [1, 2, 3]  # the record was updated before each attempt
    assert sleeps.delays == [1.0, 2.0]  # base * 2^attempt
    assert final["payload"]["deliveries"] == {"discord": {"delivered": True, "attempts": 3, "cli_fallback": False}}
    assert cli.getvalue() == ""
    assert final["updated_at"] > final["created_at"]


async def test_all_attempts_fail_row_failed_cli_line_written_no_secret(outbox_db: Database, client: Any,
                                                                     http_receiver: HttpReceiver) -> None:
    nid = await record(outbox_db, "ci_failed", "CI failed on main")
    http_receiver.script = [500] * 10
    discord = DiscordChannel(http_receiver.base_url + HOOK, client)
    cli, sleeps = io.StringIO(), Sleeps()
    await worker(outbox_db, [discord], cli, sleeps).drain()
    final = await row(outbox_db, nid)
    assert final["status"] == "failed" and final["attempts"] == 4
    assert "HTTP 500" in final["last_error"]
    assert "discord-hook-secret" not in final["last_error"] and "discord-hook-secret" not in str(final["payload"])
    assert sleeps.delays == [1.0, 2.0, 4.0]
    assert cli.getvalue() == "[FLEET] ci_failed | - | CI failed on main\n"
    assert final["payload"]["deliveries"]["discord"]["cli_fallback"] is True


async def test_channels_are_independent(outbox_db: Database, client: Any, http_receiver: HttpReceiver) -> None:
    nid = await record(outbox_db, "pr_ready", "change ready")
    http_receiver.script = [404]  # the first request (Discord or Telegram): unknown webhook
    discord = DiscordChannel(http_receiver.base_url + HOOK, client)
    telegram = TelegramChannel(TOKEN, "42", client, api_base=http_receiver.base_url)
    cli, sleeps = io.StringIO(), Sleeps()
    await worker(outbox_db, [discord, telegram], cli, sleeps).drain()
    final = await row(outbox_db, nid)
    deliveries = final["payload"]["deliveries"]
    assert sorted(d["delivered"] for d in deliveries.values()) == [False, True]  # one failed, one sent
    assert final["status"] == "failed" and final["attempts"] == 2  # 404 is not retried
    assert TOKEN not in (final["last_error"] or "") and "discord-hook-secret" not in (final["last_error"] or "")
    assert cli.getvalue().startswith("[FLEET] pr_ready | - | change ready")
    assert len(http_receiver.requests) == 2


async def test_a_live_lease_is_respected_and_a_dead_workers_row_is_taken_over(outbox_db: Database) -> None:
    live, dead = await record(outbox_db, summary="live"), await record(outbox_db, summary="dead")
    async with outbox_db.system() as conn:
        await notification_store.claim_pending(conn, "other-live-worker", limit=1, lease_s=60)
        await notification_store.claim_pending(conn, "dead-worker", limit=1, lease_s=0.05)
    await asyncio.sleep(0.1)
    cli, sleeps = io.StringIO(), Sleeps()
    assert await worker(outbox_db, [CliChannel(cli)], io.StringIO(), sleeps).drain() == 1
    assert (await row(outbox_db, live))["status"] == "pending"
    assert (await row(outbox_db, dead))["status"] == "sent"
    assert cli.getvalue() == "[FLEET] failed | - | dead\n"


async def test_worker_wakes_on_insert(outbox_db: Database) -> None:
    cli, sleeps = io.StringIO(), Sleeps()
    w = worker(outbox_db, [CliChannel(cli)], io.StringIO(), sleeps, wake_url=outbox_db.app_url, poll_s=60.0)
    w.start()
    try:
        await asyncio.sleep(0.5)  # connected and idle, polling only once a minute
        nid = await record(outbox_db, "health_alert", "outbox lag 40s")
        for _ in range(250):
            if (await row(outbox_db, nid))["status"] == "sent":
                break
            await asyncio.sleep(0.02)
    finally:
        await w.stop()
    assert (await row(outbox_db, nid))["status"] == "sent"
    assert cli.getvalue() == "[FLEET] health_alert | - | outbox lag 40s\n"


async def test_every_terminal_task_gets_one_delivered_notification_inv_018(outbox_db: Database) -> None:
    """The conductor's notify_terminal for one task, nothing for the others (as if it died
    after the commit); the relay's guard fills in; the worker delivers each once."""
    registry = TaskRegistry(outbox_db)
    parts = build_parts(outbox_db.settings, outbox_db)
    op = Operator(id="op-inv18", tier=Tier.SOVEREIGN)
    finished = []
    for n, path in enumerate([["cancelled"], ["spawning", "failed", "abandoned"], ["cancelled"]]):
        task, _ = await registry.admit_and_insert(op, 10, description=f"t{n}", repo="/r", base_branch="main",
                                                  task_type="feature", idempotency_key=f"k{n}")
        for status in path:
            task = await registry.transition(task.id, task.version, status, operator=op)
        finished.append(task)
    await parts.ledger.notify_terminal(finished[0])
    await OutboxRelay(outbox_db, fast_outbox(), [TerminalNotificationSink(outbox_db)]).drain()
    cli, sleeps = io.StringIO(), Sleeps()
    assert await worker(outbox_db, [CliChannel(cli)], io.StringIO(), sleeps).drain() == 3
    async with outbox_db.system() as conn:
        assert await notification_store.terminal_tasks_without_notification(conn) == []
        rows = await conn.fetch("SELECT task_id, type, status FROM fleet_notifications")
    assert sorted((r["task_id"], r["type"], r["status"]) for r in rows) == sorted(
        [(finished[0].id, "cancelled", "sent"), (finished[1].id, "abandoned", "sent"),
         (finished[2].id, "cancelled", "sent")])
    assert sorted(cli.getvalue().splitlines()) == sorted(
        f"[FLEET] {kind} | {t.id} | {summary}" for t, kind, summary in [
            (finished[0], "cancelled", "stopped by the operator"),
            (finished[1], "abandoned", "retry budget spent or abandoned"),
            (finished[2], "cancelled", "stopped by the operator")])
