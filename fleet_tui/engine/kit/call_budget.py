"""Limits kept in PostgreSQL, so that every conductor of a fleet takes from the same one."""

from __future__ import annotations

from fleet_tui.store import limits as limit_store
from fleet_tui.store.db import Database


class SharedCallBudget:
    """A CallBudget (infra.protocols) in fleet_limits: e.g. the fleet's GitHub calls per hour."""

    def __init__(self, db: Database, key: str, limit: int, window_s: float) -> None:
        self._db = db
        self.key = key
        self.limit = limit
        self.window_s = window_s

    async def take(self) -> float:
        async with self._db.system() as conn:
            return await limit_store.take(conn, self.key, self.limit, self.window_s)

    async def pause(self, seconds: float) -> None:
        async with self._db.system() as conn:
            await limit_store.pause(conn, self.key, seconds)

    async def used(self) -> int:
        async with self._db.system(kind="read") as conn:
            return await limit_store.taken(conn, self.key, self.window_s)
