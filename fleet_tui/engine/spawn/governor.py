"""The governor: tier limits on live tasks and the fleet's capacity. can_spawn is a cache for
fast refusals in the faces; decide is the authority: one transaction in the store (one lock
every conductor shares) that counts, queues or inserts the task with its spawn lease."""

from __future__ import annotations

from typing import Any, Protocol

from fleet_tui.config import GovernorSettings
from fleet_tui.domain.errors import SpawnDeniedError
from fleet_tui.domain.models import Operator, TaskRecord, Tier
from fleet_tui.store.tasks import Admission, denial_message


class Admissions(Protocol):
    """Where the decision is written (TaskRegistry.admit, through the engine's ledger): the
    task with its spawn lease, a queue entry, or the refusal, under the fleet's one lock."""

    async def admit(self, operator: Operator, *, limit: int, capacity: int, key: str | None,
                    **fields: Any) -> Admission: ...


class TierLimits:
    """The governor's figures, from settings alone: each tier's limit on live tasks and the
    fleet's capacity (what a face shows as headroom)."""

    def __init__(self, settings: GovernorSettings) -> None:
        self._limits = dict(settings.tier_limits)
        self.fleet_capacity = settings.fleet_capacity

    def limit_for(self, tier: Tier | str) -> int:
        return self._limits.get(Tier(tier), 0)


class Governor(TierLimits):
    def __init__(self, admissions: Admissions, settings: GovernorSettings) -> None:
        super().__init__(settings)
        self._admissions = admissions
        self._live_cache: dict[str, int] = {}
        self.denials = 0
        self.admissions = 0

    def explain(self, operator: Operator, live: int) -> str:
        return denial_message(operator, live, self.limit_for(operator.tier))

    def can_spawn(self, operator: Operator) -> bool:
        """Fast, possibly stale answer from the cache; never the final word."""
        limit = self.limit_for(operator.tier)
        return limit > 0 and self._live_cache.get(operator.id, 0) < limit

    def note_live(self, operator_id: str, live: int) -> None:
        self._live_cache[operator_id] = live

    async def decide(self, operator: Operator, *, key: str | None, **fields: Any) -> Admission:
        """One admission decision (see TaskRegistry.admit); SpawnDeniedError over the tier
        limit. Other outcomes (created, existing, queued, merged, full, gone) are returned."""
        limit = self.limit_for(operator.tier)
        admission = await self._admissions.admit(operator, limit=limit, capacity=self.fleet_capacity,
                                                 key=key, **fields)
        if admission.live is not None:
            self._live_cache[operator.id] = admission.live
        if admission.outcome == "denied":
            self.denials += 1
            live = admission.live or 0
            raise SpawnDeniedError(denial_message(operator, live, limit), operator_id=operator.id,
                                   tier=str(operator.tier), live=live, limit=limit)
        if admission.outcome == "created":
            self.admissions += 1
        return admission

    async def admit(self, operator: Operator, **fields: Any) -> tuple[TaskRecord, bool]:
        """Insert the task if the operator is under its tier limit and the fleet has room
        (SpawnDeniedError otherwise; nothing queued): (task, created)."""
        key = fields.pop("idempotency_key", None)
        admission = await self.decide(operator, key=key, may_queue=False, **fields)
        if admission.task is None:
            raise SpawnDeniedError(
                f"the fleet is at its capacity of {self.fleet_capacity} live tasks",
                operator_id=operator.id, tier=str(operator.tier), live=admission.live or 0,
                limit=self.limit_for(operator.tier))
        return admission.task, admission.outcome == "created"
