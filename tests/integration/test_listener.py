"""The face-side listener on its own connection: follows the relay's NOTIFY, reads in
commit order from its cursor, survives pg_terminate_backend by reconnecting and catching
up, and sees only its operator's events under row-level security."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from fleet_tui.domain.models import Operator, Tier
from fleet_tui.engine.kit.listener import OutboxListener
from fleet_tui.engine.workers.outbox_relay import OutboxRelay, PgNotifySink
from fleet_tui.store.db import Database
from tests.integration.outbox_harness import fast_outbox, outbox_db, write_events  # noqa: F401


async def collect(listener: OutboxListener, into: list[dict[str, Any]]) -> None:
    async for event in listener:
        into.append(event)


async def until(predicate: Any, timeout_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


async def test_listener_reconnects_after_pg_terminate_backend_and_catches_up(outbox_db: Database) -> None:
    before = await write_events(outbox_db, 3)  # history before the face starts: not replayed
    relay = OutboxRelay(outbox_db, fast_outbox(), [PgNotifySink(outbox_db)], wake_url=outbox_db.app_url)
    relay.start()
    listener = OutboxListener(outbox_db.app_url, poll_s=30.0)  # long poll: NOTIFY must wake it
    await listener.start()
    seen: list[dict[str, Any]] = []
    reader = asyncio.create_task(collect(listener, seen))
    try:
        first = await write_events(outbox_db, 5, wait=False)
        await until(lambda: len(seen) >= 5)
        pid = listener.wakeup.backend_pid
        assert pid is not None
        owner = await asyncpg.connect(outbox_db.owner_url)
        try:
            assert await owner.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await owner.close()
        second = await write_events(outbox_db, 7, wait=False)  # while the face is cut off
        await until(lambda: len(seen) >= 12)
        third = await write_events(outbox_db, 2, wait=False)  # and live again afterwards
        await until(lambda: len(seen) >= 14)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await listener.close()
        await relay.stop()
    ids = [e["id"] for e in seen]
    assert ids == first + second + third  # each once, in commit order, none from before
    assert not set(before) & set(ids)
    assert listener.reconnects >= 1
    assert listener.wakeup.backend_pid is None or listener.wakeup.backend_pid != pid
    cursors = [(e["txid"], e["id"]) for e in seen]
    assert cursors == sorted(cursors)


async def test_listener_sees_only_its_operators_events(outbox_db: Database) -> None:
    alice = Operator(id="alice", tier=Tier.BUILDER)
    listener = OutboxListener(outbox_db.app_url, operator=alice, poll_s=0.1)
    await listener.start()
    seen: list[dict[str, Any]] = []
    reader = asyncio.create_task(collect(listener, seen))
    try:
        mine = await write_events(outbox_db, 4, operator_id="alice")
        await write_events(outbox_db, 4, operator_id="bob")
        more = await write_events(outbox_db, 1, operator_id="alice")
        await until(lambda: len(seen) >= 5)
        await asyncio.sleep(0.3)  # a few more polls: nothing of bob's may arrive
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await listener.close()
    assert [e["id"] for e in seen] == mine + more
    assert {e["operator_id"] for e in seen} == {"alice"}


async def test_listener_resumes_from_a_saved_cursor(outbox_db: Database) -> None:
    listener = OutboxListener(outbox_db.app_url, poll_s=0.1)
    await listener.start()
    ids = await write_events(outbox_db, 6)
    got: list[dict[str, Any]] = []
    async for event in listener:
        got.append(event)
        if len(got) == 3:
            break
    saved = (got[-1]["txid"], got[-1]["id"])
    await listener.close()
    resumed = OutboxListener(outbox_db.app_url, after=saved, poll_s=0.1)
    rest: list[dict[str, Any]] = []
    async for event in resumed:
        rest.append(event)
        if len(rest) == 3:
            break
    await resumed.close()
    assert [e["id"] for e in got + rest] == ids


async def test_events_held_back_by_an_open_transaction_are_read_soon_after_it_ends(outbox_db: Database) -> None:
    """A NOTIFY wakes the face; one event is readable, a later one is committed but above
    the horizon (an older transaction is open). Its end sends no NOTIFY: the face must look
    again soon, not after its poll interval."""
    listener = OutboxListener(outbox_db.app_url, poll_s=60.0)
    await listener.start()
    seen: list[dict[str, Any]] = []
    reader = asyncio.create_task(collect(listener, seen))
    holder = await asyncpg.connect(outbox_db.app_url)
    loop = asyncio.get_running_loop()
    try:
        first = await write_events(outbox_db, 1)
        older = holder.transaction()
        await older.start()
        await holder.fetchval("SELECT pg_current_xact_id()")  # an id below the next event's
        held = await write_events(outbox_db, 1, wait=False)
        async with outbox_db.system() as conn:
            await conn.execute("SELECT pg_notify('fleet_events', $1)", str(first[0]))  # the relay's wake
        await until(lambda: len(seen) >= 1)
        await asyncio.sleep(0.3)
        assert [e["id"] for e in seen] == first  # the later one waits for the open transaction
        await older.rollback()
        ended = loop.time()
        await until(lambda: len(seen) >= 2)
        assert loop.time() - ended < 10, "the event waited for the 60 s poll"
    finally:
        await holder.close()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await listener.close()
    assert [e["id"] for e in seen] == first + held
