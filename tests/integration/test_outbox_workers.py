"""start_workers on a real conductor (as run_headless and the UI use it): a terminal
transition reaches a face listener through the relay's NOTIFY and the operator through
the notification worker's CLI line; stop() ends both."""

from __future__ import annotations

import asyncio
from typing import Any

from fleet_tui.engine.kit.listener import OutboxListener
from fleet_tui.engine.session import start_workers
from tests.fixtures.engine import operator


async def test_workers_deliver_a_terminal_transition_to_faces_and_channels(make_conductor: Any, capsys: Any) -> None:
    conductor = await make_conductor(outbox__poll_s=0.2)
    op = operator()
    task, _ = await conductor.registry.admit_and_insert(op, 10, description="x", repo="/r", base_branch="main",
                                                        task_type="feature", idempotency_key="w1")
    listener = OutboxListener(conductor.parts.db.app_url, poll_s=5.0)
    await listener.start()
    workers = start_workers(conductor)
    events: list[dict[str, Any]] = []

    async def follow() -> None:
        async for event in listener:
            events.append(event)

    reader = asyncio.create_task(follow())
    try:
        moved = await conductor.registry.transition(task.id, task.version, "cancelled", operator=op)
        line = f"[FLEET] cancelled | {moved.id} | stopped by the operator"
        err = ""
        for _ in range(300):
            err += capsys.readouterr().err
            if any(e["type"] == "task.cancelled" for e in events) and line in err:
                break
            await asyncio.sleep(0.02)
        for _ in range(100):  # the line is printed first, then the delivery is recorded
            async with conductor.parts.db.system() as conn:
                status = await conn.fetchval("SELECT status FROM fleet_notifications WHERE task_id = $1",
                                             moved.id)
            if status == "sent":
                break
            await asyncio.sleep(0.02)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await listener.close()
        await workers.stop()
    # (the earlier task.proposed may show too: head is the horizon, which another open
    # transaction on the server can hold below it; faces apply events by version)
    cancelled = [e for e in events if e["type"] == "task.cancelled"]
    assert len(cancelled) == 1 and {e["type"] for e in events} <= {"task.proposed", "task.cancelled"}
    assert cancelled[0]["task_id"] == moved.id and cancelled[0]["payload"]["version"] == moved.version
    assert line in err
    assert status == "sent"  # no remote channel configured: the CLI line is the channel
    assert workers.relay.stats.delivered >= 1 and workers.notifier.stats.sent == 1
    assert not workers.relay.running and not workers.notifier.running  # both stopped
