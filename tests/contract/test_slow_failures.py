"""aider and opencode meeting an API outage and a usage limit: each ends with its own reason.

Both CLIs retry such errors themselves (aider ~60 s of backoff plus litellm's own retries,
opencode five attempts) before they give up, so the four runs go at once, one task each, on
one fake that fails per model: about two minutes instead of eight."""

from __future__ import annotations

import asyncio
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

import pytest

from fleet_tui.domain.models import SpawnRequest
from fleet_tui.domain.status import TaskStatus
from tests.contract.harness import TEST_COMMAND, agent_home, prepare_env, profile_env
from tests.contract.test_opencode import opencode_config
from tests.e2e.test_conductor_flow import wait_for
from tests.fakes.model_api import OUTAGE, USAGE_LIMIT, FakeModelApi, agent_script
from tests.fixtures.engine import operator

S = TaskStatus
RUNS = {("aider", OUTAGE): "openai/outage-model", ("aider", USAGE_LIMIT): "openai/limit-model",
        ("opencode", OUTAGE): "fleetfake/outage-model", ("opencode", USAGE_LIMIT): "fleetfake/limit-model"}
REASON = {OUTAGE: "api_unavailable", USAGE_LIMIT: "usage_limited"}


async def test_aider_and_opencode_outages_and_usage_limits_end_with_their_own_reasons(
        make_conductor: Any, git_repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        agent_bin: Path) -> None:
    api = FakeModelApi(agent_script(test_command=TEST_COMMAND, commit=True),
                       scenario_for_model={"outage-model": OUTAGE, "limit-model": USAGE_LIMIT}).start()
    try:
        home = agent_home(tmp_path)
        opencode_config(home, api.url, models=("outage-model", "limit-model"))
        prepare_env(monkeypatch, agent_bin, home, {"OPENAI_API_KEY": "sk-test-0000",
                                                   "OPENAI_API_BASE": f"{api.url}/v1"})
        conductor = await make_conductor(agents__profiles={"aider": {"env": profile_env("aider")},
                                                           "opencode": {"env": profile_env("opencode")}})
        await conductor.start()
        op = operator()
        spawned = {}
        for (agent, scenario), model in RUNS.items():
            result = await conductor.spawn(op, SpawnRequest(
                description=f"Add hello.txt ({agent}, {scenario})", repo=str(git_repo), agent=agent, model=model,
                max_retries=0))
            assert result.task is not None
            spawned[(agent, scenario)] = result.task.id
        # settled: an outage is abandoned (no retry budget), a usage limit waits (retrying)
        settled = await asyncio.gather(*(wait_for(conductor, tid, lambda t: t.status in (
            S.RETRYING, S.ABANDONED, S.READY), 400) for tid in spawned.values()))
    finally:
        api.stop()
    for ((agent, scenario), _), task in zip(spawned.items(), settled):
        assert task.failure_reason == REASON[scenario], (agent, scenario, task.failure_context)
        if scenario == USAGE_LIMIT:  # waits for the reset the answer named, no retry spent
            assert task.status == S.RETRYING and task.retry_count == 0, (agent, task.failure_context)
            assert datetime.fromisoformat(task.metadata["retry_at"]) > datetime.now(UTC)
