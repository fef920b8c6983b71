"""Per-operator credit budget: what the operator's runs cost so far (as the agents reported
it) plus what the next run is expected to cost must stay within the budget.

The budget is fleet_operators.credit_budget when set, else settings.budget.default_usd
(None: no limit). A run's expected cost is the mean reported cost of that (agent, model)
in the fleet, else settings.budget.default_run_estimate_usd."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from fleet_tui.config import BudgetSettings
from fleet_tui.store.db import Database


@dataclass(frozen=True)
class BudgetGate:
    limit_usd: float | None
    spent_usd: float
    estimates: dict[tuple[str, str], float] = field(default_factory=dict)
    default_estimate_usd: float = 0.0

    def estimate(self, agent: str, model: str | None) -> float:
        return self.estimates.get((agent, model or agent), self.default_estimate_usd)

    def allows(self, agent: str, model: str | None) -> bool:
        """Refuse once the budget is spent, or when this run would take it over."""
        if self.limit_usd is None:
            return True
        if self.spent_usd >= self.limit_usd:
            return False
        return self.spent_usd + self.estimate(agent, model) <= self.limit_usd

    def describe(self) -> str:
        if self.limit_usd is None:
            return f"no budget limit (spent ${self.spent_usd:.4f})"
        return f"spent ${self.spent_usd:.4f} of ${self.limit_usd:.4f}"

    def to_dict(self) -> dict[str, Any]:
        return {"limit_usd": self.limit_usd, "spent_usd": round(self.spent_usd, 6)}


async def load_budget_gate(db: Database, settings: BudgetSettings, operator_id: str, conn: Any = None) -> BudgetGate:
    """conn: read on the caller's connection (one after another), else each read its own, at once."""
    from fleet_tui.store import reputation as history

    if conn is not None:
        limit = await history.credit_budget(conn, operator_id=operator_id)
        spent = await history.spent_usd(conn, operator_id=operator_id)
    else:
        limit, spent = await asyncio.gather(history.credit_budget(db, operator_id=operator_id),
                                            history.spent_usd(db, operator_id=operator_id))
    if limit is None:
        limit = settings.default_usd
    if limit is None:  # nothing to enforce: skip the cost estimates
        return BudgetGate(None, spent)
    return BudgetGate(
        limit_usd=limit,
        spent_usd=spent,
        estimates=await history.average_run_cost(conn or db),
        default_estimate_usd=settings.default_run_estimate_usd,
    )
