"""opencode (the pinned opencode-ai) through the shipped profile, against a loopback OpenAI
Chat Completions API with SSE: a provider in the user's opencode.json, as a user routes it."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from fleet_tui.domain.status import TaskStatus
from fleet_tui.store import executions
from tests.contract.harness import TEST_COMMAND, agent_home, prepare_env, run_agent
from tests.fakes.model_api import BAD_KEY, USAGE, agent_script

S = TaskStatus
AGENT = "opencode"


def opencode_config(home: Path, api_url: str, models: tuple[str, ...] = ()) -> None:
    directory = home / ".config" / "opencode"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "opencode.json").write_text(json.dumps({
        "provider": {"fleetfake": {"npm": "@ai-sdk/openai-compatible", "name": "loopback fake",
                                   "options": {"baseURL": f"{api_url}/v1", "apiKey": "{env:OPENAI_API_KEY}"},
                                   "models": {name: {"name": name} for name in ("test-model", *models)}}},
        "model": "fleetfake/test-model", "autoupdate": False, "share": "disabled"}))


@pytest.fixture
def opencode_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, agent_bin: Path):
    def setup(api_url: str) -> None:
        home = agent_home(tmp_path)
        opencode_config(home, api_url)
        prepare_env(monkeypatch, agent_bin, home, {"OPENAI_API_KEY": "sk-test-0000"})
    return setup


@pytest.mark.parametrize("commit", [True, False], ids=["commits", "leaves-edits"])
async def test_opencode_change_reaches_ready_with_usage(
        make_conductor: Any, git_repo: Path, opencode_env: Any, commit: bool) -> None:
    run = await run_agent(make_conductor, git_repo, opencode_env,
                          agent_script(test_command=TEST_COMMAND, commit=commit), agent=AGENT)
    assert run.task.status == S.READY, run.task.failure_context
    assert ("conductor_committed" in await run.audit_actions()) is not commit
    (execution,) = await run.executions()
    assert execution["exit_code"] == 0 and execution["session_id"]
    assert execution["input_tokens"] >= USAGE["input_tokens"] and execution["output_tokens"]
    shown = "\n".join(await run.conductor.logs(_system(), run.task.id, 400))
    assert "tool bash: git add hello.txt" in shown or not commit


async def test_opencode_bad_key_is_auth(make_conductor: Any, git_repo: Path, opencode_env: Any) -> None:
    """An outage and a usage limit: tests/contract/test_slow_failures.py (opencode retries
    them for about two minutes before it gives up)."""
    run = await run_agent(make_conductor, git_repo, opencode_env,
                          agent_script(test_command=TEST_COMMAND, commit=True), scenario=BAD_KEY, agent=AGENT)
    assert run.task.failure_reason == "auth", run.task.failure_context


async def test_opencode_removed_flag_is_cli_changed_and_not_retried(
        make_conductor: Any, git_repo: Path, opencode_env: Any) -> None:
    run = await run_agent(make_conductor, git_repo, opencode_env,
                          agent_script(test_command=TEST_COMMAND, commit=True), agent=AGENT, max_retries=2,
                          profile_changes={"command": ["opencode", "run", "--format", "json", "--removed-in-this-version", "{model_args}"]},
                          until=(S.ABANDONED,))
    assert run.task.failure_reason == "cli_changed" and run.task.retry_count == 0, run.task.failure_context


async def test_two_first_ever_opencode_tasks_at_once_each_keep_their_session_in_their_own_database(
        make_conductor: Any, git_repo: Path, opencode_env: Any, tmp_path: Path) -> None:
    """A user who never ran opencode spawns two tasks together: both finish, and each task's
    session is in its own database beside the user's (its --continue finds it). On one shared
    database the two first runs raced on its migration ('Failed query: CREATE TABLE workspace')."""
    from fleet_tui.domain.models import SpawnRequest
    from tests.contract.harness import fake, profile_env
    from tests.e2e.test_conductor_flow import wait_for
    from tests.fixtures.engine import operator

    api = fake(agent_script(test_command=TEST_COMMAND, commit=True))
    opencode_env(api.url)
    try:
        conductor = await make_conductor(review__enabled=True, agents__profiles={AGENT: {"env": profile_env(AGENT)}})
        await conductor.start()
        spawned = [await conductor.spawn(operator(), SpawnRequest(description=f"Add hello.txt ({n})", repo=str(git_repo),
                                                                  agent=AGENT)) for n in (1, 2)]
        tasks = [await wait_for(conductor, s.task.id, lambda t: t.status in (S.READY, S.FAILED, S.ABANDONED), 180)
                 for s in spawned]
    finally:
        api.stop()
    data = tmp_path / "home" / ".local" / "share" / "opencode"
    for task in tasks:
        assert task.status == S.READY, task.failure_context
        (execution,) = await executions.list_for_task(conductor.parts.db, task.id, operator=None)
        with closing(sqlite3.connect(data / f"fleet-{task.id}.db")) as db:
            sessions = db.execute("SELECT id, directory FROM session").fetchall()
        assert sessions == [(execution["session_id"], task.worktree_path)], sessions
    assert not (data / "opencode.db").exists()  # the user's own database is left alone


def _system():
    from fleet_tui.domain.models import SYSTEM

    return SYSTEM


DENIED = "curl -s http://127.0.0.1:9/"


@pytest.fixture
async def asked_run(make_conductor: Any, git_repo: Path, opencode_env: Any, tmp_path: Path):
    """An opencode task whose user's config says to ask before curl: `opencode run` rejects
    the call (nobody to ask) and ends the run, and the task waits for a person."""
    from tests.contract.harness import drive
    from tests.fakes.model_api import FakeModelApi, Step

    apis: list[Any] = []

    async def start() -> Any:
        api = FakeModelApi([Step(command=DENIED), *agent_script(test_command=TEST_COMMAND, commit=True)]).start()
        apis.append(api)
        opencode_env(api.url)
        config = tmp_path / "home" / ".config" / "opencode" / "opencode.json"
        config.write_text(json.dumps({**json.loads(config.read_text()), "permission": {"bash": {"curl *": "ask"}}}))
        run = await drive(make_conductor, git_repo, agent=AGENT, api=api)
        assert run.task.status == S.FAILED and run.task.needs_input, run.task.failure_context
        assert run.task.failure_reason == "permission_denied" and run.task.retry_count == 0
        (asked,) = run.task.failure_context["asked"]
        assert asked == {"tool": "bash", "target": DENIED, "grant": f"bash({DENIED})"}
        return run

    yield start
    for api in apis:
        api.stop()


async def test_opencode_asks_and_a_person_grants_it_for_the_task(asked_run: Any) -> None:
    from tests.contract.harness import fleet_cli
    from tests.e2e.test_conductor_flow import wait_for

    run = await asked_run()
    shown = fleet_cli(run, "show", run.task.id)
    assert f"retry {run.task.id} --allow 'bash({DENIED})'" in shown.stdout, shown
    granted = fleet_cli(run, "retry", run.task.id, "--allow", f"bash({DENIED})")
    assert granted.returncode == 0, granted.stderr
    task = await wait_for(run.conductor, run.task.id, lambda t: t.status in (S.READY, S.FAILED, S.ABANDONED), 120)
    assert task.status == S.READY, task.failure_context
    assert task.retry_count == 0 and not task.needs_input and task.metadata["granted"] == [f"bash({DENIED})"]
    shown_log = "\n".join(await run.conductor.logs(_system(), run.task.id, 400))
    assert f"tool bash: {DENIED}" in shown_log and "[fleet] denied" not in shown_log


async def test_opencode_asks_and_a_person_answers_in_the_same_session(asked_run: Any) -> None:
    from tests.contract.harness import answer_and_finish

    run = await asked_run()
    (first,) = await run.executions()
    await answer_and_finish(run, DENIED)
    assert all(e["session_id"] == first["session_id"] for e in await run.executions())


async def test_opencode_asks_nothing_of_the_internet_on_the_way_to_ready(
        make_conductor: Any, git_repo: Path, opencode_env: Any) -> None:
    """At every start it asked models.opencode.ai for its model list, through whatever proxy
    it was given: the shipped profile switches that off. The proxy here records what is
    asked of it (and answers nothing). The npm registry is still asked once, for the provider
    package the user's config names (@ai-sdk/openai-compatible): opencode 1.18 has no switch."""
    import socket
    import threading

    from tests.contract.harness import profile_env

    recorder = socket.create_server(("127.0.0.1", 0))
    asked: list[str] = []

    def record() -> None:
        while True:
            try:
                conn, _ = recorder.accept()
            except OSError:
                return
            with conn:
                asked.append(conn.recv(200).split(b"\r\n")[0].decode(errors="replace"))

    threading.Thread(target=record, daemon=True).start()
    proxy = f"http://127.0.0.1:{recorder.getsockname()[1]}"
    env = profile_env(AGENT, {name: proxy for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")})
    try:
        run = await run_agent(make_conductor, git_repo, opencode_env,
                              agent_script(test_command=TEST_COMMAND, commit=True), agent=AGENT,
                              profile_changes={"env": env})
    finally:
        recorder.close()
    assert run.task.status == S.READY, run.task.failure_context
    assert [line for line in asked if not line.startswith("CONNECT registry.npmjs.org:443 ")] == []
