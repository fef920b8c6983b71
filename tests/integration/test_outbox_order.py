"""10,000 events from concurrent transactions that commit out of order (random delays
between insert and commit): the relay delivers every one exactly once and the face
listener, reading from a (txid, id) cursor below the snapshot horizon, sees every one in
commit order. A naive `id > last` reader running alongside shows what the horizon
prevents (its misses are printed, not asserted: they depend on timing)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from fleet_tui.engine.kit.listener import OutboxListener
from fleet_tui.engine.workers.outbox_relay import OutboxRelay, PgNotifySink
from fleet_tui.store import outbox as outbox_store
from fleet_tui.store.db import Database
from tests.integration.outbox_harness import RecordingSink, fast_outbox, outbox_db  # noqa: F401

EVENTS = 10_000
PER_TX = 5
WRITERS = 8


async def naive_reader(db: Database, seen: set[int], stop: asyncio.Event) -> None:
    last = 0
    while not stop.is_set():
        async with db.system(kind="read") as conn:
            rows = await conn.fetch("SELECT id FROM fleet_outbox WHERE id > $1 ORDER BY id LIMIT 1000", last)
        for r in rows:
            seen.add(r["id"])
        if rows:
            last = rows[-1]["id"]
        await asyncio.sleep(0.003)


async def test_ten_thousand_out_of_order_commits_all_delivered_and_seen(outbox_db: Database) -> None:
    rng = random.Random(7)
    sink = RecordingSink()
    relay = OutboxRelay(outbox_db, fast_outbox(batch_size=500, poll_s=0.05),
                        [PgNotifySink(outbox_db), sink], wake_url=outbox_db.app_url)
    listener = OutboxListener(outbox_db.app_url, poll_s=0.5)
    await listener.start()
    seen: list[dict[str, Any]] = []
    done = asyncio.Event()

    async def follow() -> None:
        async for event in listener:
            seen.append(event)
            if len(seen) >= EVENTS:
                done.set()

    commit_order: list[list[int]] = []
    queue = list(range(EVENTS // PER_TX))

    async def writer() -> None:
        while queue:
            queue.pop()
            async with outbox_db.system() as conn:
                ids = []
                for _ in range(PER_TX):
                    ids.append(await outbox_store.enqueue(conn, "test.order", {}, task_id=None,
                                                          operator_id="op"))
                    await asyncio.sleep(rng.uniform(0, 0.002))
            commit_order.append(ids)

    naive_seen: set[int] = set()
    stop_naive = asyncio.Event()
    tasks = [asyncio.create_task(follow()), asyncio.create_task(naive_reader(outbox_db, naive_seen, stop_naive))]
    relay.start()
    started = time.monotonic()
    try:
        await asyncio.gather(*(writer() for _ in range(WRITERS)))
        written_s = time.monotonic() - started
        await asyncio.wait_for(done.wait(), 90)
        seen_s = time.monotonic() - started
        for _ in range(500):  # the relay's own record may trail the NOTIFY by a round
            if len(sink.received) >= EVENTS:
                break
            await asyncio.sleep(0.02)
    finally:
        stop_naive.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await listener.close()
        await relay.stop()

    all_ids = sorted(i for tx in commit_order for i in tx)
    assert len(all_ids) == EVENTS
    # the test is only worth something if commits really overtook each other: a later
    # commit whose first row took a smaller id than an earlier commit's first row
    overtaken = sum(1 for a, b in zip(commit_order, commit_order[1:]) if min(b) < min(a))
    assert overtaken > 0
    assert sorted(e["id"] for e in seen) == all_ids  # every one, each once
    cursors = [(e["txid"], e["id"]) for e in seen]
    assert cursors == sorted(cursors)  # in commit (txid) order
    relayed = [e["id"] for e in sink.received]
    assert sorted(relayed) == all_ids
    async with outbox_db.system() as conn:
        assert await conn.fetchval("SELECT count(*) FROM fleet_outbox WHERE processed_at IS NULL") == 0
    missed = EVENTS - len(naive_seen)
    print(f"\n{EVENTS} events in {EVENTS // PER_TX} transactions, {overtaken} commits overtaken; "
          f"written {written_s:.2f}s, all seen by the face {seen_s:.2f}s; "
          f"relay batches {relay.stats.batches}; naive id-cursor reader missed {missed}")
