"""The command line's admin verbs (prefs, dlq, routes, sweep, invariants) ask only FleetAdmin
of the fleet they open: here they run on a small fake of it, no conductor, no database."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, UTC
from typing import Any

import pytest

from fleet_tui.commands import dlq, ops, prefs, routes
from fleet_tui.domain.models import Operator, Tier
from fleet_tui.engine.events.runner import RunResult
from fleet_tui.engine.fleet_admin import FleetAdmin
from fleet_tui.engine.ops.invariants import InvariantResult
from fleet_tui.engine.ops.sweep import SweepReport

ME = Operator(id="ann", tier=Tier.SOVEREIGN)


class FakeAdmin:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def dead_letters(self, operator: Operator, *, include_closed: bool = False) -> list[dict[str, Any]]:
        self.calls.append(("dead_letters", operator.id, include_closed))
        return [{"id": 7, "status": "pending", "sequence_name": "review", "step_name": "notify", "task_id": "t1",
                 "attempts": 2, "next_attempt_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "error": "boom"}]

    async def retry_dead_letter(self, operator: Operator, letter_id: int) -> RunResult:
        self.calls.append(("retry_dead_letter", letter_id))
        return RunResult(sequence="review", event_type="task.failed", depth=0, status="succeeded", run_id=3)

    async def discard_dead_letter(self, operator: Operator, letter_id: int) -> None:
        self.calls.append(("discard_dead_letter", letter_id))

    async def routes(self, operator: Operator, kind: str) -> list[dict[str, Any]]:
        return []

    async def route(self, operator: Operator, kind: str, key: str) -> dict[str, Any]:
        return {"source": "platform", "effective": {"event_type": key}}

    async def save_route(self, operator: Operator, kind: str, item: dict[str, Any], *,
                         platform: bool = False) -> dict[str, Any]:
        self.calls.append(("save_route", kind, item, platform))
        return {**item, "operator_id": None if platform else operator.id}

    async def delete_route(self, operator: Operator, kind: str, key: str, *, platform: bool = False) -> None:
        self.calls.append(("delete_route", kind, key, platform))

    async def breaker_states(self) -> list[dict[str, Any]]:
        return [{"name": "adapter:call_webhook", "state": "open", "recent_failures": 5, "retry_in_s": 30}]

    async def preferences(self, operator: Operator) -> dict[str, bool | None]:
        return {"usage_pause": None}

    async def set_preference(self, operator: Operator, key: str, value: bool | None) -> None:
        self.calls.append(("set_preference", operator.id, key, value))

    async def sweep(self) -> SweepReport:
        return SweepReport(removed=["t1"], bundles=[], errors=[], disk_bytes=2_000_000)

    async def invariants(self) -> list[InvariantResult]:
        return [InvariantResult("INV-014", "tier limits", True, "ok"),
                InvariantResult("INV-015", "live agents", False, "t9 has no process")]


def fake() -> tuple[FakeAdmin, FleetAdmin]:
    admin = FakeAdmin()
    return admin, admin  # mypy: the fake stands where a FleetAdmin is asked


def args(**values: Any) -> argparse.Namespace:
    return argparse.Namespace(json=False, **values)


async def test_dead_letters_are_listed_retried_and_discarded(capsys: pytest.CaptureFixture[str]) -> None:
    admin, fleet = fake()
    assert await dlq.run_list(fleet, ME, args(all=True)) == 0
    assert "7      pending   review.notify task=t1 attempts=2 next=2026-01-02 03:04:05 boom" in capsys.readouterr().out
    assert await dlq.run_action(fleet, ME, args(verb="retry", letter_id=7)) == 0
    assert capsys.readouterr().out.strip() == "retried dead letter 7: succeeded"
    assert await dlq.run_action(fleet, ME, args(verb="discard", letter_id=7)) == 0
    assert admin.calls == [("dead_letters", "ann", True), ("retry_dead_letter", 7), ("discard_dead_letter", 7)]


async def test_routes_set_and_breakers(capsys: pytest.CaptureFixture[str]) -> None:
    admin, fleet = fake()
    item = {"event_type": "task.failed", "sequence_name": "retry", "match": {}}
    assert await routes.run_set(fleet, ME, args(kind="route", file=None, data=json.dumps(item), platform=False)) == 0
    assert capsys.readouterr().out.strip() == "saved route task.failed for ann"
    assert await routes.run_breakers(fleet, ME, args()) == 0
    assert "adapter:call_webhook" in capsys.readouterr().out
    assert admin.calls == [("save_route", "route", item, False)]


async def test_preferences_and_operations(capsys: pytest.CaptureFixture[str]) -> None:
    admin, fleet = fake()
    assert await prefs.run_set(fleet, ME, args(key="usage_pause", parsed=True)) == 0
    assert admin.calls == [("set_preference", "ann", "usage_pause", True)]
    assert await ops.run_sweep(fleet, ME, args()) == 0
    assert "removed 1 worktrees (0 bundles kept); worktrees use 2.0 MB" in capsys.readouterr().out
    assert await ops.run_invariants(fleet, ME, args()) == 1  # one fails
    assert "INV-015 FAIL live agents: t9 has no process" in capsys.readouterr().out
