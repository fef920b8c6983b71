"""An external event posted to the engine runs the sequence routed for it."""

from __future__ import annotations

import asyncio
from typing import Any

from fleet_tui.domain.models import Operator, Tier
from fleet_tui.engine.session import api_support_for


async def test_an_external_event_runs_its_routed_sequence(make_conductor: Any) -> None:
    conductor = await make_conductor()
    admin = Operator(id="admin", tier=Tier.SOVEREIGN, is_admin=True)
    await conductor.router.admin.upsert(admin, "sequence", {"name": "page_oncall", "steps": [
        {"name": "page", "adapter": "notify", "wave": 0, "criticality": "critical", "retries": 0,
         "params": {"kind": "health_alert"}}]}, platform=True)
    await conductor.router.admin.upsert(admin, "route", {"event_type": "external.alert",
                                                         "sequence_name": "page_oncall", "match": {}},
                                        platform=True)
    event = dict(event_id="msg_disk_1", kind="alert", source="pager", task_id=None,
                 summary="disk almost full", data={"host": "ci-1"}, replay_window_s=600)
    support = api_support_for(conductor)
    assert await support.publish_external_event(**event)
    assert not await support.publish_external_event(**event)  # the same id again
    for _ in range(100):
        async with conductor.parts.db.system() as conn:
            rows = await conn.fetch("SELECT type, payload FROM fleet_notifications WHERE type = 'health_alert'")
        if rows:
            break
        await asyncio.sleep(0.05)
    assert [r["payload"]["summary"] for r in rows] == ["disk almost full"]
