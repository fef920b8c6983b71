"""GET /api/fleet/metrics scraped from a headless `fleet-tui` process over real HTTP and read by
prometheus_client's own text parser: a demo task that fails on every attempt (1 + 3 retries)
shows as four failed attempts; counters end in `_total`; no series appears twice; the
spawn-to-running, monitor-cycle and outbox-lag histograms are there with their buckets."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from fleet_tui.engine.kit.tokens import mint
from fleet_tui.engine.kit.keys import KeyStore
from tests.e2e.headless import headless, headless_env

HISTOGRAMS = ("fleet_spawn_to_running_seconds", "fleet_monitor_cycle_seconds", "fleet_outbox_delivery_lag_seconds")


def parse(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(families: dict[str, Any], family: str, sample: str, **labels: str) -> float:
    found = [s.value for s in families[family].samples if s.name == sample and s.labels == labels]
    assert len(found) == 1, (sample, labels, families[family].samples)
    return found[0]


async def test_a_scrape_counts_every_failed_attempt_in_standard_form(fresh_database: Any, git_repo: Path,
                                                                     tmp_path: Path) -> None:
    env = headless_env(await fresh_database(), tmp_path, retry__base_s="0.05", retry__cap_s="0.2",
                       retry__max_retries="3", review__enabled="false")
    token = mint(KeyStore(tmp_path / "data" / "keys"), operator_id="ops", tier="sovereign",
                 issuer="fleet-tui", audience="fleet-tui")
    async with headless(env, tmp_path / "server.log") as (server, url):
        async with httpx.AsyncClient(base_url=url, timeout=30,
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            spawned = await client.post("/api/fleet/spawn", json={
                "description": "always fails\nFLEET-DEMO: fail", "repo": str(git_repo), "agent": "demo"})
            assert spawned.status_code == 201, spawned.text
            task_id = spawned.json()["task"]["id"]
            deadline = time.monotonic() + 90
            while (task := (await client.get(f"/api/fleet/tasks/{task_id}")).json()["task"])["status"] != "abandoned":
                assert time.monotonic() < deadline, (task["status"], server.text()[-2000:])
                await asyncio.sleep(0.2)
            assert task["retry_count"] == 3
            await asyncio.sleep(1.0)  # the relay delivers the last events
            scraped = await client.get("/api/fleet/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    families = parse(scraped.text)

    assert value(families, "fleet_task_failures", "fleet_task_failures_total", agent="demo") == 4
    runs = [s for s in families["fleet_agent_runs"].samples if s.name == "fleet_agent_runs_total"]
    assert [(s.labels["agent"], s.value) for s in runs] == [("demo", 4)]
    failed_runs = families["fleet_agent_run_failures"].samples
    assert [s.value for s in failed_runs if s.name.endswith("_total")] == [4]
    assert value(families, "fleet_tasks", "fleet_tasks", status="abandoned") == 1
    assert "fleet_total_failures" not in scraped.text and "_created" not in scraped.text
    assert [s.value for s in families["fleet_active_agents"].samples] == [0] * 5  # one per tier

    for family in families.values():
        if family.type == "counter":
            assert all(s.name == family.name + "_total" for s in family.samples), family
    series = Counter((s.name, tuple(sorted(s.labels.items()))) for f in families.values() for s in f.samples)
    assert [key for key, n in series.items() if n > 1] == []

    for name in HISTOGRAMS:
        family = families[name]
        assert family.type == "histogram"
        counts = [s for s in family.samples if s.name == name + "_count"]
        assert counts and all(s.value >= 1 for s in counts), family
        buckets = [s for s in family.samples if s.name == name + "_bucket"]
        assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == counts[-1].value
    spawn_count = value(families, "fleet_spawn_to_running_seconds", "fleet_spawn_to_running_seconds_count",
                        agent="demo")
    assert spawn_count == 4  # each attempt reached running before its agent failed
