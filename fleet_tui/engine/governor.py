"""The governor: tier limits on live tasks. can_spawn is a cache for fast refusals in the
faces; admit is the authority (one transaction in the store that locks the operator)."""

from __future__ import annotations

from typing import Any

from fleet_tui.config import GovernorSettings
from fleet_tui.domain.errors import SpawnDeniedError
from fleet_tui.domain.models import Operator, TaskRecord, Tier


class Governor:
    def __init__(self, registry: Any, settings: GovernorSettings) -> None:
        self._registry = registry
        self._limits = dict(settings.tier_limits)
        self.fleet_capacity = settings.fleet_capacity
        self._live_cache: dict[str, int] = {}
        self.denials = 0
        self.admissions = 0

    def limit_for(self, tier: Tier | str) -> int:
        return self._limits.get(Tier(tier), 0)

    def explain(self, operator: Operator, live: int) -> str:
        limit = self.limit_for(operator.tier)
        noun = "task" if live == 1 else "tasks"
        return (
            f"{operator.tier} operator {operator.id} has {live} live {noun}; "
            f"the {operator.tier} limit is {limit}"
        )

    def can_spawn(self, operator: Operator) -> bool:
        """Fast, possibly stale answer from the cache; never the final word."""
        limit = self.limit_for(operator.tier)
        return limit > 0 and self._live_cache.get(operator.id, 0) < limit

    def note_live(self, operator_id: str, live: int) -> None:
        self._live_cache[operator_id] = live

    async def admit(self, operator: Operator, **fields: Any) -> tuple[TaskRecord, bool]:
        """Insert the task if the operator is under its tier limit, atomically."""
        limit = self.limit_for(operator.tier)
        try:
            task, created = await self._registry.admit_and_insert(operator, limit, **fields)
        except SpawnDeniedError:
            self.denials += 1
            self._live_cache[operator.id] = limit
            raise
        if created:
            self.admissions += 1
            self._live_cache[operator.id] = self._live_cache.get(operator.id, 0) + 1
        return task, created
