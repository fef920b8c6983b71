"""The governor over a fake of its Admissions port (the ledger's admit in a conductor): the
limits it passes, and how it reads the decision written."""

from __future__ import annotations

from typing import Any

import pytest

from fleet_tui.config import GovernorSettings
from fleet_tui.domain.errors import SpawnDeniedError
from fleet_tui.domain.models import Operator, Tier
from fleet_tui.engine.spawn.governor import Governor
from fleet_tui.store.tasks import Admission

OPERATOR = Operator(id="op", tier=Tier.BUILDER)


class Admissions:
    def __init__(self, outcome: str, live: int = 2) -> None:
        self.outcome, self.live = outcome, live
        self.asked: list[dict[str, Any]] = []

    async def admit(self, operator: Operator, *, limit: int, capacity: int, key: str | None,
                    **fields: Any) -> Admission:
        self.asked.append({"operator": operator.id, "limit": limit, "capacity": capacity, "key": key, **fields})
        return Admission(outcome=self.outcome, ref="q-1", live=self.live, fleet_live=5, task=None)


def governor(admissions: Admissions) -> Governor:
    return Governor(admissions, GovernorSettings(fleet_capacity=9))


async def test_the_decision_is_asked_with_the_tiers_limit_and_the_fleets_capacity() -> None:
    admissions = Admissions("queued")
    gov = governor(admissions)
    admission = await gov.decide(OPERATOR, key="k", may_queue=True)
    assert admission.outcome == "queued"
    assert admissions.asked == [{"operator": "op", "limit": gov.limit_for(Tier.BUILDER), "capacity": 9,
                                 "key": "k", "may_queue": True}]
    assert gov.admissions == 0 and gov.denials == 0


async def test_over_the_tier_limit_is_refused_and_counted() -> None:
    gov = governor(Admissions("denied", live=7))
    with pytest.raises(SpawnDeniedError):
        await gov.decide(OPERATOR, key=None)
    assert gov.denials == 1 and not gov.can_spawn(OPERATOR)  # the live count it read is cached
