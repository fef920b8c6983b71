"""Circuit breakers are the fleet's: failures recorded by two conductors add up in
PostgreSQL, the breaker opens for both, and in half-open one probe runs fleet-wide."""

from __future__ import annotations

import asyncio
from typing import Any

from fleet_tui.engine.kit.fleet_breakers import SharedBreakerRegistry


async def test_failures_on_two_conductors_open_the_breaker_for_both(database: Any) -> None:
    name = f"adapter:shared-{id(database)}-{asyncio.get_running_loop().time()}"
    a, b = SharedBreakerRegistry(database, open_s=1.0), SharedBreakerRegistry(database, open_s=1.0)
    for registry in (a, b, a, b):
        assert await registry.allow(name)
        await registry.record(name, False)
    assert await b.allow(name)  # four failures: still closed
    await a.record(name, False)  # the fifth, on the other conductor
    assert not await b.allow(name) and not await a.allow(name)
    await b.refresh()
    assert name in b.open_names()
    await asyncio.sleep(1.1)
    probes = await asyncio.gather(a.allow(name), b.allow(name), a.allow(name), b.allow(name))
    assert sorted(probes) == [False, False, False, True]  # one probe in the whole fleet
    await a.record(name, True)
    assert await b.allow(name)


async def test_refreshes_read_the_fleet_at_most_once_per_max_age_and_see_a_change_within_it(
        database: Any, monkeypatch: Any) -> None:
    from fleet_tui.store import breakers as breaker_store

    name = f"adapter:cached-{id(database)}-{asyncio.get_running_loop().time()}"
    a, b = SharedBreakerRegistry(database), SharedBreakerRegistry(database, max_age_s=0.5)
    reads = 0
    all_states = breaker_store.all_states

    async def counted(conn: Any) -> Any:
        nonlocal reads
        reads += 1
        return await all_states(conn)
    monkeypatch.setattr(breaker_store, "all_states", counted)
    for _ in range(100):  # a preview per keystroke, a route per spawn
        await b.refresh()
    assert reads == 1
    for _ in range(5):  # opened by the other conductor
        await a.record(name, False)
    await asyncio.sleep(0.5)
    await b.refresh()
    assert name in b.open_names() and reads == 2
