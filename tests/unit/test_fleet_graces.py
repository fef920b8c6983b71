"""Grace periods follow the timeouts they guard; a failed saga step whose work another
conductor now owns is not undone; CI of a pending change is polled with a backoff."""

from __future__ import annotations

import asyncio

import pytest

from fleet_tui.config import Settings
from fleet_tui.engine.watch.ci_polls import CIPolls
from fleet_tui.engine.kit.saga import SagaFailed, SagaStep, run_saga


def test_the_spawn_grace_is_derived_from_the_setup_timeout_and_shown_in_the_config() -> None:
    settings = Settings(worktree={"setup_timeout_s": 300, "git_timeout_s": 60})
    assert settings.monitor.spawn_grace_s == 390  # git + setup + 30 s to start the agent
    assert settings.api.drain_grace_s == 390  # a spawn request may take as long
    assert settings.model_dump()["monitor"]["spawn_grace_s"] == 390


def test_a_spawn_grace_shorter_than_the_setup_timeout_is_raised_to_it() -> None:
    settings = Settings(worktree={"setup_timeout_s": 300}, monitor={"spawn_grace_s": 120})
    assert settings.monitor.spawn_grace_s == 300
    assert Settings(monitor={"spawn_grace_s": 900}).monitor.spawn_grace_s == 900


def test_a_disowned_saga_compensates_nothing() -> None:
    undone: list[str] = []

    async def fail() -> None:
        raise RuntimeError("the final write was refused")

    async def undo() -> None:
        undone.append("process")

    async def no_longer_ours() -> bool:
        return False

    async def run(may_compensate) -> SagaFailed:  # type: ignore[no-untyped-def]
        with pytest.raises(SagaFailed) as failed:
            await run_saga([SagaStep("process", _ok, undo), SagaStep("running", fail)],
                           on_compensated=_noted, may_compensate=may_compensate)
        return failed.value

    disowned = asyncio.run(run(no_longer_ours))
    assert disowned.disowned and disowned.compensated == [] and undone == []
    owned = asyncio.run(run(None))
    assert not owned.disowned and owned.compensated == ["process"] and undone == ["process"]


async def _ok() -> None:
    return None


async def _noted(step: str, error: str | None) -> None:
    return None


def test_pending_ci_backs_off_from_the_floor_and_within_the_budget() -> None:
    now = [0.0]
    polls = CIPolls(30, budget_per_hour=1000, clock=lambda: now[0])
    assert polls.due("a")
    assert [polls.pending("a") for _ in range(6)] == [30, 60, 120, 240, 480, 600]
    assert not polls.due("a")
    now[0] = 600
    assert polls.due("a")
    # 100 changes waiting share half of 1,000 calls an hour: each every 720 s at most
    assert CIPolls(30, budget_per_hour=1000).pending("b", waiting=100) == 720
    assert CIPolls(0).pending("c") == 0  # a local forge: every cycle
