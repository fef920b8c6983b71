"""Outbox relay throughput and end-to-end latency on a real server.

Usage: .venv/bin/python bench/outbox_bench.py [owner_url] [events] [nats_url]
A scratch database is created and dropped. Measures: (1) relay throughput draining a
backlog of N events through NOTIFY (+ NATS when a URL is given), as events/s and as a
ratio to the rate of bare single-row INSERT transactions through the same pool (so the
figure travels between machines); (2) commit -> face latency: the time from a commit to
the event arriving at an OutboxListener through the running relay, median and p95."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from fleet_tui.config import DatabaseSettings, OutboxSettings, Settings
from fleet_tui.engine.kit.listener import OutboxListener
from fleet_tui.engine.workers.outbox_relay import OutboxRelay, PgNotifySink
from fleet_tui.store import outbox as outbox_store
from fleet_tui.store.connect import with_database
from fleet_tui.store.db import Database


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def write(db: Database, count: int, per_tx: int) -> float:
    started = time.perf_counter()
    for start in range(0, count, per_tx):
        async with db.system() as conn:
            for _ in range(min(per_tx, count - start)):
                await outbox_store.enqueue(conn, "bench.event", {"x": 1}, task_id=None, operator_id="op")
    return time.perf_counter() - started


async def main(owner_url: str, events: int, nats_url: str | None) -> None:
    name = f"fleet_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(owner_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            db = await Database.open(Settings(data_dir=Path(data_dir),
                                              database=DatabaseSettings(url=with_database(owner_url, name))))
            try:
                await run(db, events, nats_url)
            finally:
                await db.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def run(db: Database, events: int, nats_url: str | None) -> None:
    insert_s = await write(db, 1000, 1)
    insert_rate = 1000 / insert_s
    await write(db, events, 100)
    sinks: list = [PgNotifySink(db)]
    if nats_url:
        from fleet_tui.infra.nats_sink import NatsSink

        sinks.append(NatsSink(nats_url, subject_prefix=f"fleetbench{uuid.uuid4().hex[:6]}"))
    relay = OutboxRelay(db, OutboxSettings(batch_size=500), sinks)
    started = time.perf_counter()
    drained = await relay.drain()
    drain_s = time.perf_counter() - started
    rate = drained / drain_s
    print(f"relay drain: {drained} events in {drain_s:.2f}s = {rate:,.0f} events/s "
          f"({len(sinks)} sinks); single-row insert transactions: {insert_rate:,.0f}/s; "
          f"ratio relay/insert = {rate / insert_rate:.1f}x")

    relay = OutboxRelay(db, OutboxSettings(poll_s=1.0), [PgNotifySink(db)], wake_url=db.app_url)
    relay.start()
    listener = OutboxListener(db.app_url, poll_s=5.0)
    await listener.start()
    latencies: list[float] = []
    stream = listener.events()
    try:
        await asyncio.sleep(0.3)
        for _ in range(200):
            t0 = time.perf_counter()
            await write(db, 1, 1)
            await asyncio.wait_for(anext(stream), 10)
            latencies.append((time.perf_counter() - t0) * 1000)
    finally:
        await listener.close()
        await relay.stop()
    print(f"commit -> face via relay NOTIFY: median {pct(latencies, 0.5):.1f} ms, "
          f"p95 {pct(latencies, 0.95):.1f} ms over {len(latencies)} events "
          f"(wake-up by trigger NOTIFY; poll fallback 1 s)")


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(args[0] if args else "postgresql://postgres@127.0.0.1:5432/postgres",
                     int(args[1]) if len(args) > 1 else 10_000, args[2] if len(args) > 2 else None))
