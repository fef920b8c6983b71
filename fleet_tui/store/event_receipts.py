"""Ids of signed external events already received (replay refusal across conductors)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fleet_tui.store.db import Database


async def first_receipt(db: Database, event_id: str, *, keep_s: float) -> bool:
    """Record event_id; False when it was received before (within keep_s). Receipts older
    than keep_s are pruned on the way: their timestamps are outside the window by then."""
    async with db.system(kind="write") as conn:
        await conn.execute("DELETE FROM fleet_event_receipts WHERE received_at < now() - make_interval(secs => $1)",
                           keep_s)
        inserted = await conn.fetchval(
            "INSERT INTO fleet_event_receipts (id) VALUES ($1) ON CONFLICT (id) DO NOTHING RETURNING true",
            event_id)
    return bool(inserted)
