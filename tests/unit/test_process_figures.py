"""engine.ops.metrics reads this process's figures through ProcessFigures (the governor's and
the monitor's counts, the bus's drops, the histograms) and the breakers through
BreakerFigures: here on small fakes of them and of the database, no PostgreSQL. The
observer's headroom stands where the governor is read, from settings, admitting nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from fleet_tui.config import GovernorSettings
from fleet_tui.domain.models import Tier
from fleet_tui.engine.observer.observer import ObserverHeadroom
from fleet_tui.engine.ops.metrics import Telemetry, collect, exposition
from fleet_tui.store import health as health_store
from fleet_tui.store.db import Database

FIGURES = {"live_agents": 2, "total_spawns": 5, "failed_attempts": 1, "total_tasks": 4, "retried_tasks": 1,
           "avg_spawn_duration_ms": 1500.0, "recent_runs": 0, "recent_failures": 0, "outbox_pending": 0,
           "outbox_lag_s": 0.0, "dlq_depth": 0, "spawn_queue_depth": 0}
SERIES: dict[str, list[dict[str, Any]]] = {"tasks": [], "runs": [], "failed_attempts": [], "spawn_to_running": []}


class FakeDb:
    @asynccontextmanager
    async def system(self, kind: str = "write") -> AsyncIterator[object]:
        yield object()


@dataclass
class Counts:
    fleet_capacity: int = 7
    admissions: int = 4
    denials: int = 3


@dataclass
class Loop:
    running: bool = True
    cycles: int = 11
    errors: int = 2
    last_cycle_ms: float = 12.34


@dataclass
class Bus:
    dropped: int = 5


@dataclass
class Process:
    governor: Counts | ObserverHeadroom = field(default_factory=Counts)
    monitor: Loop | None = field(default_factory=Loop)
    bus: Bus = field(default_factory=Bus)
    telemetry: Telemetry | None = None


class Breakers:
    def __init__(self) -> None:
        self.refreshed = 0

    async def refresh(self) -> None:
        self.refreshed += 1

    def open_names(self) -> list[str]:
        return ["model:x"]


@pytest.fixture(autouse=True)
def scripted_store(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fleet_figures(conn: object, *, since: datetime) -> dict[str, Any]:
        return dict(FIGURES)

    async def metric_series(conn: object, *, spawn_buckets: tuple[float, ...]) -> dict[str, list[dict[str, Any]]]:
        return SERIES

    monkeypatch.setattr(health_store, "fleet_figures", fleet_figures)
    monkeypatch.setattr(health_store, "metric_series", metric_series)


def fake_db() -> Database:
    return FakeDb()  # type: ignore[return-value]  # a fake of the two reads made here


async def test_collect_reads_the_process_figures_and_refreshed_breakers() -> None:
    breakers = Breakers()
    values = await collect(fake_db(), process=Process(), breakers=breakers)
    assert breakers.refreshed == 1
    assert (values["capacity"], values["governor_admissions_total"], values["governor_denial_count"]) == (7, 4, 3)
    assert (values["monitor_running"], values["monitor_cycles"], values["monitor_errors"]) == (1, 11, 2)
    assert values["monitor_last_cycle_ms"] == 12.3 and values["bus_dropped_events_total"] == 5
    assert values["open_breakers"] == 1 and values["retry_rate"] == 0.25


async def test_collect_without_a_process_or_before_its_monitor_starts() -> None:
    bare = await collect(fake_db())
    assert (bare["capacity"], bare["monitor_running"], bare["bus_dropped_events_total"], bare["open_breakers"]) \
        == (0, 0, 0, 0)
    unstarted = await collect(fake_db(), process=Process(monitor=None))
    assert (unstarted["monitor_running"], unstarted["monitor_cycles"], unstarted["capacity"]) == (0, 0, 7)


async def test_exposition_names_the_process_counters_and_its_histograms() -> None:
    telemetry = Telemetry()
    telemetry.monitor_cycle.observe(0.02)
    text = (await exposition(fake_db(), process=Process(telemetry=telemetry), breakers=Breakers())).decode()
    for line in ("fleet_capacity 7.0", "fleet_governor_admissions_total 4.0", "fleet_governor_denials_total 3.0",
                 "fleet_monitor_running 1.0", "fleet_monitor_cycles_total 11.0", "fleet_open_breakers 1.0",
                 "fleet_bus_dropped_events_total 5.0", "fleet_monitor_cycle_seconds_count 1.0"):
        assert line in text.splitlines(), line


async def test_the_observers_headroom_comes_from_settings_and_admits_nothing() -> None:
    headroom = ObserverHeadroom(GovernorSettings(fleet_capacity=9))
    assert headroom.fleet_capacity == 9 and headroom.limit_for(Tier.OBSERVER) == 0
    assert headroom.limit_for("builder") == GovernorSettings().tier_limits[Tier.BUILDER]
    values = await collect(fake_db(), process=Process(governor=headroom))
    assert (values["capacity"], values["governor_admissions_total"], values["governor_denial_count"]) == (9, 0, 0)
