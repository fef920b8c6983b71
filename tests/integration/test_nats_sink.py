"""NATS on the real server at 127.0.0.1:4222: the relay publishes each event to
<prefix>.<event type> with the event id in Nats-Msg-Id; a subscriber receives them all.
Through a JetStream stream every publish is acknowledged and a repeat is deduplicated."""

from __future__ import annotations

import asyncio
import json
import os
import uuid

import nats

from fleet_tui.engine.workers.outbox_relay import OutboxRelay
from fleet_tui.infra.nats_sink import NatsSink, redacted, subject_for
from fleet_tui.store.db import Database
from tests.integration.outbox_harness import event_ids, fast_outbox, outbox_db, write_events  # noqa: F401

NATS_URL = os.environ.get("FLEET_TEST_NATS_URL", "nats://127.0.0.1:4222")


def test_subject_and_redaction() -> None:
    assert subject_for("fleet", "task.merged") == "fleet.task.merged"
    assert subject_for("fleet", "weird event>*") == "fleet.weird_event__"
    assert redacted("nats://user:pw@example.org:4223") == "nats://example.org:4223"


async def test_subscriber_receives_every_event_from_the_real_server(outbox_db: Database) -> None:
    prefix = f"fleettest{uuid.uuid4().hex[:8]}"
    nc = await nats.connect(NATS_URL)
    got: list[tuple[str, dict, str]] = []

    async def on_msg(msg) -> None:  # type: ignore[no-untyped-def]
        got.append((msg.subject, json.loads(msg.data), msg.headers["Nats-Msg-Id"]))

    await nc.subscribe(f"{prefix}.>", cb=on_msg)
    await nc.flush()
    ids = await write_events(outbox_db, 120, event_type="task.merged", per_tx=10)
    await write_events(outbox_db, 30, event_type="task.running")
    sink = NatsSink(NATS_URL, subject_prefix=prefix)
    relay = OutboxRelay(outbox_db, fast_outbox(batch_size=50), [sink])
    try:
        assert await relay.drain() == 150
        for _ in range(200):
            if len(got) >= 150:
                break
            await asyncio.sleep(0.02)
    finally:
        await relay.stop()
        await nc.close()
    known = await event_ids(outbox_db)
    assert len(got) == 150
    assert {header for _, _, header in got} == set(known.values())
    assert all(body["event_id"] == header for _, body, header in got)
    merged = [body["id"] for subject, body, _ in got if subject == f"{prefix}.task.merged"]
    assert merged == ids  # one publisher: the subscriber sees them in commit order
    assert sum(1 for subject, _, _ in got if subject == f"{prefix}.task.running") == 30


async def test_jetstream_acknowledges_and_deduplicates_on_the_event_id(outbox_db: Database) -> None:
    prefix = f"fleettest{uuid.uuid4().hex[:8]}"
    stream = f"FLEET_TEST_{uuid.uuid4().hex[:8].upper()}"
    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    try:  # scripts/services starts nats-server with -js: JetStream must be there
        await js.add_stream(name=stream, subjects=[f"{prefix}.>"], duplicate_window=120)
    except Exception as exc:
        await nc.close()
        raise AssertionError(f"JetStream not available at {NATS_URL} (scripts/services starts it): {exc!r}") from exc
    sink = NatsSink(NATS_URL, stream=stream, subject_prefix=prefix)
    try:
        await write_events(outbox_db, 20, event_type="task.failed")
        relay = OutboxRelay(outbox_db, fast_outbox(), [sink])
        assert await relay.drain() == 20
        # the same envelopes again, as a relay would after a crash: the stream keeps one each
        async with outbox_db.system() as conn:
            rows = await conn.fetch("SELECT id, event_id::text AS e FROM fleet_outbox ORDER BY id")
        again = [{"id": r["id"], "event_id": r["e"], "type": "task.failed"} for r in rows]
        assert await sink.deliver(again) == {}
        info = await js.stream_info(stream)
        assert info.state.messages == 20
    finally:
        await sink.close()
        await js.delete_stream(stream)
        await nc.close()


async def test_unreachable_server_fails_the_batch_for_a_retry(outbox_db: Database) -> None:
    await write_events(outbox_db, 3)
    sink = NatsSink("nats://user:pw@127.0.0.1:9")  # nothing listens on the discard port
    relay = OutboxRelay(outbox_db, fast_outbox(), [sink])
    assert await relay.run_once() == 3
    await relay.stop()
    async with outbox_db.system() as conn:
        errors = [r["last_error"] for r in await conn.fetch("SELECT last_error FROM fleet_outbox")]
    assert all(e and "cannot connect" in e and "pw" not in e for e in errors)
