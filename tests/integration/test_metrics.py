"""Metrics in Prometheus text, health snapshots with alerts on crossing, the log sink with
trace/span ids, and retention cleanup, on a fresh real database."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, UTC

from fleet_tui.engine.kit.breaker import BreakerRegistry
from fleet_tui.engine.ops.health import HealthMonitor, HealthThresholds
from fleet_tui.engine.ops.logsink import DatabaseLogHandler, cleanup
from prometheus_client.parser import text_string_to_metric_families

from fleet_tui.engine.ops.metrics import collect, exposition
from fleet_tui.engine.ledger.tracing import span, trace
from fleet_tui.store import executions
from fleet_tui.store import logs as log_store
from tests.fixtures.engine import operator
from tests.integration.router_harness import Clock


async def two_tasks_one_failed_run(c, git_repo):
    op = operator()
    first = await c.registry.create(op, description="one", repo=str(git_repo), base_branch="main", task_type="docs")
    await c.registry.create(op, description="two", repo=str(git_repo), base_branch="main", task_type="docs")
    await c.registry.record_failure(first.id, operator=None, context={})
    await executions.start(c.parts.db, first)
    await executions.finish(c.parts.db, first.id, attempt=1, exit_code=1, failure="agent_exit")
    return op


async def test_metrics_figures_and_prometheus_text(make_conductor, git_repo) -> None:
    c = await make_conductor()
    op = await two_tasks_one_failed_run(c, git_repo)
    # A spawn that fails before any agent runs is a failed attempt too (no execution row).
    for name in ("three", "four"):
        task = await c.registry.create(op, description=name, repo=str(git_repo), base_branch="main",
                                       task_type="docs", agent="demo")
        spawning = await c.registry.transition(task.id, task.version, "spawning", operator=None)
        await c.registry.transition(task.id, spawning.version, "failed", operator=None, reason="worktree failed")
    c.governor.denials = 3
    values = await collect(c.parts.db, process=c)
    assert (values["active_agents"], values["total_spawns"], values["total_failures"]) == (4, 1, 2)
    assert values["retry_rate"] == 0.25 and values["governor_denial_count"] == 3
    assert values["outbox_pending"] >= 2 and values["dlq_depth"] == 0

    families = {f.name: f for f in text_string_to_metric_families((await exposition(c.parts.db, process=c)).decode())}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert sum(s.value for s in families["fleet_active_agents"].samples) == 4
    assert samples[("fleet_task_failures_total", (("agent", "demo"),))] == 2
    assert samples[("fleet_governor_denials_total", ())] == 3
    assert samples[("fleet_tasks", (("status", "failed"),))] == 2
    assert all(name.startswith("fleet_") for name in families)


async def test_health_snapshot_alerts_once_per_crossing(make_conductor, git_repo) -> None:
    c = await make_conductor()
    await two_tasks_one_failed_run(c, git_repo)
    clock = Clock()
    breakers = BreakerRegistry(clock=clock)
    for _ in range(5):
        breakers.get("adapter:call_webhook").record_failure()
    health = HealthMonitor(c.parts.db, thresholds=HealthThresholds(failure_rate=0.5, dlq_depth=10),
                           breakers=breakers)
    first = await health.snapshot()
    assert first.failure_rate == 1.0 and first.open_breakers == ["adapter:call_webhook"]
    assert sorted(a["check"] for a in first.alerts) == ["failure_rate", "open_breakers"]
    await health.snapshot()  # still over: no new alert
    clock.now += 30  # the breaker turns half-open: cleared
    cleared = await health.snapshot()
    assert [a["check"] for a in cleared.alerts] == ["failure_rate"]
    async with c.parts.db.system() as conn:
        alerts = await conn.fetch("SELECT payload FROM fleet_notifications WHERE type = 'health_alert' ORDER BY id")
    assert [a["payload"]["summary"].split(" is ")[0] for a in alerts] == ["health: failure_rate", "health: open_breakers"]
    assert len(await health.recent()) == 3


async def test_log_sink_keeps_trace_and_span_and_retention_trims(make_conductor) -> None:
    c = await make_conductor()
    handler = DatabaseLogHandler(c.parts.db, level=logging.DEBUG)
    logger = logging.getLogger("fleet.test.sink")
    span_logger = logging.getLogger("fleet.span")
    for lg in (logger, span_logger):
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        with trace("trace-abc") as tid, span("outer") as outer:
            with span("inner") as inner:
                logger.info("inside", extra={"task_id": "t1", "attempt": 2})
    finally:
        for lg in (logger, span_logger):
            lg.removeHandler(handler)
    assert await handler.flush_to_db() == 3
    async with c.parts.db.system() as conn:
        rows = await log_store.by_trace(conn, tid)
    inside = next(r for r in rows if r["message"] == "inside")
    assert inside["span_id"] == inner and inside["task_id"] == "t1" and inside["fields"] == {"attempt": 2}
    inner_end = next(r for r in rows if r["fields"].get("span") == "inner")
    assert inner_end["span_id"] == inner and inner_end["parent_span_id"] == outer
    removed = await cleanup(c.parts.db, retention=timedelta(days=1),
                            now=datetime.now(UTC) + timedelta(days=2))
    assert removed["logs"] == 3
    async with c.parts.db.system() as conn:
        assert await log_store.by_trace(conn, tid) == []
