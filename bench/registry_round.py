"""Timing of one registry round (create + transition proposed -> spawning) on a real server.

Usage: .venv/bin/python bench/registry_round.py [owner_url] [rounds]
Default owner_url: the local server (postgresql://postgres@127.0.0.1:5432/postgres). A scratch
database is created and dropped. Prints median/p95 per round and the ratio to a bare
`SELECT 1` round trip through the same pool, so the figure travels between machines."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from fleet_tui.config import DatabaseSettings, Settings
from fleet_tui.domain.models import Operator, Tier
from fleet_tui.store.connect import with_database
from fleet_tui.store.db import Database
from fleet_tui.store.tasks import TaskRegistry


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def main(owner_url: str, rounds: int) -> None:
    name = f"fleet_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(owner_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            settings = Settings(data_dir=Path(data_dir),
                                database=DatabaseSettings(url=with_database(owner_url, name)))
            db = await Database.open(settings)
            registry = TaskRegistry(db)
            who = Operator(id="bench", tier=Tier.SOVEREIGN)
            for _ in range(20):  # warm the pool and prepared statements
                task = await registry.create(who, description="d", repo="/r", base_branch="main", task_type="feature")
                await registry.transition(task.id, 0, "spawning", operator=who)
            rounds_ms, ping_ms = [], []
            for _ in range(rounds):
                t0 = time.perf_counter()
                task = await registry.create(who, description="d", repo="/r", base_branch="main", task_type="feature")
                await registry.transition(task.id, task.version, "spawning", operator=who)
                rounds_ms.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                async with db.pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")
                ping_ms.append((time.perf_counter() - t0) * 1000)
            await db.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    med, ping = statistics.median(rounds_ms), statistics.median(ping_ms)
    print(f"registry round (create + transition), {rounds} rounds: median {med:.2f} ms, "
          f"p95 {pct(rounds_ms, 0.95):.2f} ms, max {max(rounds_ms):.2f} ms")
    print(f"bare SELECT 1 through the pool: median {ping:.3f} ms; round / ping = {med / ping:.1f}x")


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres"
    asyncio.run(main(url, int(sys.argv[2]) if len(sys.argv) > 2 else 500))
