"""The relay on real PostgreSQL: commit-order claims, at-least-once with retries and
backoff, per-sink progress, parking, two relays sharing work, signed webhooks over
loopback HTTP, and the terminal-notification guard (INV-018)."""

from __future__ import annotations

import asyncio
import json
import time

import asyncpg
import pytest

from fleet_tui.domain import webhooks
from fleet_tui.domain.models import Operator, Tier
from fleet_tui.engine.workers.outbox_relay import OutboxRelay, PgNotifySink, TerminalNotificationSink
from fleet_tui.infra.webhook_sink import WebhookSink, sink_name
from fleet_tui.store import notifications as notification_store
from fleet_tui.store import outbox as outbox_store
from fleet_tui.store.db import Database
from fleet_tui.store.tasks import TaskRegistry
from tests.integration.outbox_harness import (  # noqa: F401 (fixtures)
    HttpReceiver,
    RecordingSink,
    event_ids,
    fast_outbox,
    http_receiver,
    outbox_db,
    write_events,
)


async def rows(db: Database) -> list[dict]:
    async with db.system() as conn:
        return [dict(r) for r in await conn.fetch(
            "SELECT id, processed_at, parked_at, attempts_started, attempts_finished, delivered_to,"
            " last_error, next_attempt_at FROM fleet_outbox ORDER BY id")]


async def test_delivers_every_row_once_in_commit_order_and_marks_it(outbox_db: Database) -> None:
    ids = await write_events(outbox_db, 30, per_tx=3)
    sink = RecordingSink()
    relay = OutboxRelay(outbox_db, fast_outbox(batch_size=7), [sink])
    assert await relay.drain() == 30
    assert [e["id"] for e in sink.received] == ids  # one writer: commit order is id order
    assert [e["payload"]["n"] for e in sink.received] == list(range(30))
    for row in await rows(outbox_db):
        assert row["processed_at"] is not None
        assert (row["attempts_started"], row["attempts_finished"]) == (1, 1)
        assert row["delivered_to"] == ["recording"]
    assert await relay.run_once() == 0  # nothing left: a second pass delivers nothing


async def test_rows_of_an_open_transaction_wait_for_it_even_if_later_rows_committed(outbox_db: Database) -> None:
    """Out-of-order commits: the row that took the smaller id commits last. The relay must
    not pass it by: rows above the horizon wait, then come in txid order."""
    sink = RecordingSink()
    relay = OutboxRelay(outbox_db, fast_outbox(), [sink])
    async with outbox_db.pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.is_admin', 'true', true)")
            early_id = await outbox_store.enqueue(conn, "test.slow", {}, task_id=None, operator_id="op")
            late_ids = await write_events(outbox_db, 3, wait=False)  # commit while the first is open
            assert min(late_ids) > early_id
            assert await relay.run_once() == 0  # held back by the open transaction's horizon
    await relay.drain()
    assert [e["id"] for e in sink.received] == [early_id, *late_ids]


async def test_failed_sink_is_retried_with_backoff_and_others_are_not_repeated(outbox_db: Database) -> None:
    await write_events(outbox_db, 5)
    failing = {"on": True}
    good = RecordingSink("good")
    flaky = RecordingSink("flaky", fail=lambda e: "flaky: HTTP 503" if failing["on"] else None)
    relay = OutboxRelay(outbox_db, fast_outbox(backoff_base_s=0.3, backoff_cap_s=10), [good, flaky])
    assert await relay.run_once() == 5
    after_first = await rows(outbox_db)
    for row in after_first:
        assert row["processed_at"] is None and row["last_error"] == "flaky: HTTP 503"
        assert row["delivered_to"] == ["good"]
        assert row["next_attempt_at"] is not None
    assert await relay.run_once() == 0  # backing off: not due yet
    await asyncio.sleep(0.35)
    assert await relay.run_once() == 5  # second failure: the delay doubles
    second = await rows(outbox_db)
    first_gap = [(r["next_attempt_at"]) for r in after_first]
    assert all(b["next_attempt_at"] > a for a, b in zip(first_gap, second))
    failing["on"] = False
    await asyncio.sleep(0.65)
    assert await relay.drain() == 5
    assert len(good.received) == 5  # the good sink took each event once, never again
    assert len(flaky.received) == 5
    for row in await rows(outbox_db):
        assert row["processed_at"] is not None and row["last_error"] is None
        assert row["delivered_to"] == ["flaky", "good"]
        assert (row["attempts_started"], row["attempts_finished"]) == (3, 3)


async def test_a_row_that_keeps_failing_is_parked_and_handed_to_the_hook(outbox_db: Database) -> None:
    await write_events(outbox_db, 2, event_type="test.ok")
    await write_events(outbox_db, 1, event_type="test.poison")
    parked: list[tuple[int, str]] = []

    async def on_park(row: outbox_store.OutboxRow, reason: str) -> None:
        parked.append((row.id, reason))

    sink = RecordingSink(fail=lambda e: "always: HTTP 500" if e["type"] == "test.poison" else None)
    relay = OutboxRelay(outbox_db, fast_outbox(max_attempts=3, backoff_base_s=0, backoff_cap_s=0),
                        [sink], on_park=on_park)
    await relay.drain()
    state = {r["id"]: r for r in await rows(outbox_db)}
    poison = max(state)
    assert state[poison]["parked_at"] is not None and state[poison]["attempts_started"] == 3
    assert parked == [(poison, "always: HTTP 500")]
    assert all(state[i]["processed_at"] is not None for i in state if i != poison)
    async with outbox_db.system() as conn:
        stats = await outbox_store.stats(conn)
    assert (stats.pending, stats.parked) == (0, 1)


async def test_rows_left_unfinished_by_dead_relays_are_retried_alone_then_parked(outbox_db: Database) -> None:
    """Simulate kills: claims whose delivery never finished (leases run out). Batch-mates
    of the row come through; only the row that was in flight crash_limit times is parked."""
    ids = await write_events(outbox_db, 4)
    settings = fast_outbox(crash_limit=2, lease_s=0.2)
    dead = OutboxRelay(outbox_db, settings, [RecordingSink()], relay_id="dead")
    async with outbox_db.system() as conn:
        first = await outbox_store.claim(conn, "dead", limit=10, lease_s=0.2)  # whole batch, then "killed"
    assert [r.id for r in first] == ids
    await asyncio.sleep(0.25)
    sink = RecordingSink()
    live = OutboxRelay(outbox_db, settings, [sink], relay_id="live")
    # suspects are retried one at a time; "kill" the relay on the first one again
    async with outbox_db.system() as conn:
        again = await outbox_store.claim(conn, "dead", limit=1, lease_s=0.2, suspects=True)
    assert [r.id for r in again] == [ids[0]]  # alone: its batch-mates are not charged
    await asyncio.sleep(0.25)
    await live.drain()
    state = {r["id"]: r for r in await rows(outbox_db)}
    assert state[ids[0]]["parked_at"] is not None
    assert sorted(e["id"] for e in sink.received) == ids[1:]
    assert all(state[i]["processed_at"] is not None for i in ids[1:])
    assert dead.stats.parked == 0 and live.stats.parked == 1


async def test_two_relays_share_the_work_without_delivering_a_row_twice(outbox_db: Database) -> None:
    await write_events(outbox_db, 400, per_tx=20)
    sinks = [RecordingSink(), RecordingSink()]

    class SlowSink(RecordingSink):
        async def deliver(self, events):  # type: ignore[no-untyped-def]
            await asyncio.sleep(0.01)  # hold the lease a while so the claims overlap
            return await super().deliver(events)

    sinks = [SlowSink(), SlowSink()]
    relays = [OutboxRelay(outbox_db, fast_outbox(batch_size=25), [s], relay_id=f"r{i}")
              for i, s in enumerate(sinks)]
    await asyncio.gather(*(r.drain() for r in relays))
    got = [e["id"] for s in sinks for e in s.received]
    assert len(got) == 400 and len(set(got)) == 400
    assert all(s.received for s in sinks)  # both took a share


async def test_webhook_sink_posts_signed_events_over_loopback(outbox_db: Database,
                                                             http_receiver: HttpReceiver) -> None:
    ids = await write_events(outbox_db, 3)
    http_receiver.script = [500]  # the first request fails: that event is retried
    url = http_receiver.base_url + "/hooks/secret-token-in-path"
    old_key, new_key = "whsec_" + "b2xkLWtleS0wMTIzNDU2Nzg5", "s3cret"
    sink = WebhookSink(url, secrets=[new_key, old_key])  # rotation: both keys sign
    relay = OutboxRelay(outbox_db, fast_outbox(backoff_base_s=0, backoff_cap_s=0), [sink])
    try:
        await relay.drain()
    finally:
        await sink.close()
    by_event: dict[str, int] = {}
    for _path, headers, body in http_receiver.requests:
        event = json.loads(body)
        for key in (new_key, old_key):  # a receiver holding either key accepts it
            assert webhooks.verify([key], headers, body, now=time.time()) == event["event_id"]
        with pytest.raises(webhooks.SignatureRefused):
            webhooks.verify(["other"], headers, body, now=time.time())
        with pytest.raises(webhooks.SignatureRefused):  # bound to its moment
            webhooks.verify([new_key], headers, body, now=time.time() + 301)
        by_event[event["event_id"]] = by_event.get(event["event_id"], 0) + 1
    known = await event_ids(outbox_db)
    assert set(by_event) == {known[i] for i in ids}
    assert sorted(by_event.values()) == [1, 1, 2]  # the failed one came again, once
    for row in await rows(outbox_db):
        assert row["processed_at"] is not None and row["delivered_to"] == [sink_name(url)]


async def test_webhook_errors_never_quote_the_url(outbox_db: Database) -> None:
    await write_events(outbox_db, 1)
    url = "http://127.0.0.1:9/hooks/very-secret-token"  # discard port: connection refused
    relay = OutboxRelay(outbox_db, fast_outbox(), [WebhookSink(url)])
    await relay.run_once()
    await relay.stop()
    (row,) = await rows(outbox_db)
    assert row["last_error"] and "very-secret-token" not in row["last_error"]
    assert "127.0.0.1" in row["last_error"]  # says where, not the secret


async def test_pg_notify_sink_sends_ids_only_in_payloads_under_the_limit(outbox_db: Database) -> None:
    ids = await write_events(outbox_db, 1500, per_tx=500)
    listener = await outbox_store.connect_dedicated(outbox_db.app_url, application_name="t")
    payloads: list[str] = []
    await listener.add_listener("fleet_events_t", lambda *a: payloads.append(a[3]))
    relay = OutboxRelay(outbox_db, fast_outbox(batch_size=1500), [PgNotifySink(outbox_db, "fleet_events_t")])
    try:
        await relay.drain()
        for _ in range(100):
            if sum(len(p.split(",")) for p in payloads) >= 1500:
                break
            await asyncio.sleep(0.02)
    finally:
        await listener.close()
    assert all(len(p.encode()) < 8000 for p in payloads)
    assert sorted(int(i) for p in payloads for i in p.split(",")) == ids
    assert outbox_store.notify_payloads(list(range(10**12, 10**12 + 2000)), 7900)  # splits, never raises


async def test_terminal_events_record_one_notification_each_inv_018(outbox_db: Database) -> None:
    """Drive tasks to every terminal status through the registry only (as if the conductor
    died right after each commit): the relay's guard records the notification; a second
    writer with the same key (the conductor's notify_terminal) adds nothing."""
    registry = TaskRegistry(outbox_db)
    op = Operator(id="op-inv", tier=Tier.SOVEREIGN, is_admin=False)
    paths = {
        "merged": ["spawning", "running", "pr_created", "reviewing", "ready", "merged"],
        "abandoned": ["spawning", "failed", "abandoned"],
        "cancelled": ["cancelled"],
    }
    tasks = {}
    for end, path in paths.items():
        await registry.admit_and_insert(op, 10, description=end, repo="/r", base_branch="main",
                                        task_type="feature", idempotency_key=end)
        task = await registry.find_by_idempotency_key(op, end)
        for status in path:
            task = await registry.transition(task.id, task.version, status, operator=op)
        tasks[end] = task
    live, _ = await registry.admit_and_insert(op, 10, description="live", repo="/r", base_branch="main",
                                              task_type="feature", idempotency_key="live")
    async with outbox_db.system() as conn:
        assert len(await notification_store.terminal_tasks_without_notification(conn)) == 3
    relay = OutboxRelay(outbox_db, fast_outbox(), [TerminalNotificationSink(outbox_db)])
    await relay.drain()
    async with outbox_db.system() as conn:
        assert await notification_store.terminal_tasks_without_notification(conn) == []
        again = await notification_store.record(
            conn, task_id=tasks["merged"].id, operator_id=op.id, type="completed", summary="dup",
            dedup_key=notification_store.terminal_dedup_key(tasks["merged"].id))
        found = await conn.fetch("SELECT task_id, type FROM fleet_notifications ORDER BY type")
    assert again is None
    assert sorted((r["task_id"], r["type"]) for r in found) == sorted(
        [(tasks["merged"].id, "completed"), (tasks["abandoned"].id, "abandoned"),
         (tasks["cancelled"].id, "cancelled")])
    assert live.id not in {r["task_id"] for r in found}


async def test_a_row_held_back_by_an_open_transaction_goes_out_soon_after_it_ends(outbox_db: Database) -> None:
    """The commit's NOTIFY wakes the relay while an older transaction is still open: the row
    is above the horizon and cannot be claimed yet, and that transaction's end sends no
    NOTIFY. The relay must look again soon, not after its poll interval (a `fleet-tui stop`
    reached the control room seconds late when the relay just slept)."""
    loop = asyncio.get_running_loop()
    sink = RecordingSink()
    relay = OutboxRelay(outbox_db, fast_outbox(poll_s=60.0), [sink], wake_url=outbox_db.app_url)
    relay.start()
    holder = await asyncpg.connect(outbox_db.app_url)
    try:
        while relay._wakeup is None or relay._wakeup.connects < 1:  # listening before the commit
            await asyncio.sleep(0.01)
        older = holder.transaction()
        await older.start()
        await holder.fetchval("SELECT pg_current_xact_id()")  # an id below the row's: the horizon stays
        await write_events(outbox_db, 1, wait=False)
        await asyncio.sleep(0.3)
        assert sink.received == []  # woken, but held back
        await older.rollback()
        ended = loop.time()
        while not sink.received:
            assert loop.time() - ended < 10, "the row waited for the 60 s poll"
            await asyncio.sleep(0.01)
    finally:
        await holder.close()
        await relay.stop()
