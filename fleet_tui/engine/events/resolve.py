"""The effective policy of an operator, read through fleet_resolve_policy() and cached in
process (5 minutes by default). Other processes' writes show once the entry expires; this
process's own writes invalidate at once. No policy in the database (or no database) falls
back to the built-in defaults."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from fleet_tui.domain.models import Operator
from fleet_tui.engine.events.defaults import default_policy
from fleet_tui.engine.events.policy import Policy
from fleet_tui.store import routes as route_store
from fleet_tui.store.db import Database

log = logging.getLogger(__name__)
CACHE_TTL_S = 300.0


class PolicyCache:
    def __init__(self, db: Database, *, ttl_s: float = CACHE_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, tuple[float, Policy]] = {}
        self.hits = 0
        self.misses = 0
        self.fallbacks = 0

    async def policy(self, operator_id: str) -> Policy:
        now = self._clock()
        entry = self._entries.get(operator_id)
        if entry is not None and now - entry[0] < self._ttl_s:
            self.hits += 1
            return entry[1]
        self.misses += 1
        policy = await self._load(operator_id)
        self._entries[operator_id] = (now, policy)
        return policy

    def invalidate(self, operator_id: str | None = None) -> None:
        """Forget one operator's entry, or every entry (a platform default changed)."""
        if operator_id is None:
            self._entries.clear()
        else:
            self._entries.pop(operator_id, None)

    async def _load(self, operator_id: str) -> Policy:
        try:
            async with self._db.tenant(Operator(id=operator_id), kind="read") as conn:
                raw = await route_store.resolve_policy(conn, operator_id)
        except Exception as exc:
            self.fallbacks += 1
            log.warning("router policy unreadable (%s); using the built-in defaults", exc)
            return default_policy()
        if not raw or not raw.get("sequences"):
            self.fallbacks += 1
            return default_policy()
        try:
            return Policy.model_validate(raw)
        except ValueError as exc:  # a row written around the validation: keep routing
            self.fallbacks += 1
            log.error("router policy of %s is invalid (%s); using the built-in defaults", operator_id, exc)
            return default_policy()
