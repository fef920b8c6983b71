"""The verbs as a user types them: the installed `fleet-tui` console script in its own
process. Each expected failure is one line on stderr naming the field and the rule, the
documented exit code (2 bad input, 3 not found, 4 refused, 5 wrong status), nothing on
stdout, no traceback, and nothing created. A reader that closes the pipe early ends the
command quietly; `logs -f` prints each line once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.db import fetch
from tests.fixtures.engine import kill_tmux_server

FLEET_TUI = str(Path(sys.executable).parent / "fleet-tui")
UNKNOWN_ID = "000000000000"
TASK_VERBS = ("show", "logs", "stop", "retry", "delete", "merge")

# (argv, extra environment, exit code, text the one line must hold)
Case = tuple[list[str], dict[str, str], int, str]


def bad_input_cases(repo: Path, tmp: Path) -> list[Case]:
    bad_toml = tmp / "bad.toml"
    bad_toml.write_text("x = [\n")
    spawn = ["spawn", "--repo", str(repo)]
    cases: list[Case] = [
        (["spawn", "", "--repo", str(repo)], {}, 2, "description: must not be empty"),
        (["spawn", "   ", "--repo", str(repo)], {}, 2, "description: must not be empty"),
        (["spawn", "x" * 10_001, "--repo", str(repo)], {}, 2, "description: must be at most 10,000 characters"),
        ([*spawn, "x", "--priority", "500"], {}, 2, "--priority: must be at most 100"),
        ([*spawn, "x", "--priority", "-1"], {}, 2, "--priority: must be at least 0"),
        ([*spawn, "x", "--priority", "high"], {}, 2, "--priority: invalid int value"),
        ([*spawn, "x", "--model", "bad;model"], {}, 2, "--model: must match"),
        ([*spawn, "x", "--base", "b" * 129], {}, 2, "--base: must be at most 128 characters"),
        ([*spawn, "x", "--agent", "Bad Agent"], {}, 2, "--agent: must match"),
        ([*spawn, "x", "--agent", "nosuch"], {}, 2, "agent: unknown agent profile 'nosuch'"),
        ([*spawn, "x", "--idempotency-key", "a b"], {}, 2, "--idempotency-key: must be 1-200 characters"),
        ([*spawn, "x", "--type", "chore"], {}, 2, "--type: invalid choice: 'chore'"),
        ([*spawn, "x", "--runtime", "vm"], {}, 2, "--runtime: invalid choice: 'vm'"),
        (["spawn", "x", "--repo", str(tmp / "nope")], {}, 2, "repo: no such directory"),
        ([*spawn, "x"], {"FLEET_OPERATOR__TIER": "observer"}, 4, "needs tier builder"),
        ([*spawn, "x"], {"FLEET_BUDGET__DEFAULT_USD": "0"}, 4, "budget refuses every option"),
        ([*spawn, "x", "--runtime", "docker"], {"DOCKER_HOST": f"unix://{tmp}/dead.sock"}, 4,
         "the Docker engine at unix://"),
        (["status", "--all"], {}, 4, "admin"),
        (["logs", UNKNOWN_ID, "-n", "0"], {}, 2, "--lines: must be a whole number from 1 to 10000"),
        (["dlq", "retry", "abc"], {}, 2, "letter_id: must be a whole number"),
        (["dlq", "discard", str(2**63)], {}, 2, "letter_id: must be a whole number"),
        (["dlq", "retry", "999"], {}, 3, "dead letter 999 not found"),
        (["dlq", "discard", "999"], {}, 3, "dead letter 999 not found"),
        (["routes", "list", "--kind", "bogus"], {}, 2, "--kind: invalid choice"),
        (["routes", "show", "route", "nosuch"], {}, 3, "route nosuch not found"),
        (["routes", "set", "route", "--data", "{"], {}, 2, "--data: is not JSON"),
        (["routes", "set", "route", "--data", "[]"], {}, 2, "--data: must hold a JSON object"),
        (["routes", "set", "route", "--file", str(tmp / "missing.json")], {}, 2, "--file: cannot be read"),
        (["routes", "set", "sequence", "--data", '{"name": "s", "steps": [{"name": "a", "adapter": "nope"}]}'],
         {}, 2, "unknown adapter 'nope'"),
        (["routes", "delete", "route", "nosuch"], {}, 3, "route nosuch not found"),
        (["db", "upgrade", "--to", "999"], {}, 2, "to: must be one of the known migration numbers"),
        (["db", "downgrade", "--to", "-1"], {}, 2, "to: must be 0 or a migration number"),
        (["token", "mint", "--operator", "bad op", "--tier", "builder"], {}, 2, "--operator must be"),
        (["token", "mint", "--operator", "ok", "--tier", "builder", "--ttl", "-5"], {}, 2, "--ttl must be"),
        (["token", "mint", "--operator", "ok", "--tier", "king"], {}, 2, "--tier: invalid choice"),
        (["token", "mint", "--tier", "builder"], {}, 2, "required: --operator"),
        (["frobnicate"], {}, 2, "invalid choice: 'frobnicate'"),
        (["status"], {"FLEET_CONFIG_FILE": str(bad_toml)}, 2, "is not valid TOML"),
        (["status"], {"FLEET_CONFIG_FILE": str(tmp / "none.toml")}, 2, "FLEET_CONFIG_FILE: no such file"),
        (["status"], {"FLEET_RUNTIME__DEFAULT": "vm"}, 2, "runtime.default"),
        (["status"], {"FLEET_DATABASE__URL": "postgresql://nobody@127.0.0.1:1/none"}, 2, "cannot use the database"),
    ]
    cases += [(["show", "x" * 5000], {}, 2, "task_id: must be a task id"),
              (["stop", "bad id;rm"], {}, 2, "task_id: must be a task id")]
    for verb in TASK_VERBS:
        cases += [([verb, ""], {}, 2, "task_id: must be a task id"),
                  ([verb, UNKNOWN_ID], {}, 3, f"task {UNKNOWN_ID} not found")]
    return cases


@pytest.fixture
async def cli_env(fresh_database: Any, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_") and k != "DATABASE_URL"}
    env.update({"FLEET_DATABASE__URL": await fresh_database(), "FLEET_DATA_DIR": str(tmp_path / "data"),
                "FLEET_RUNTIME__TMUX_SOCKET": f"fleet-test-{uuid.uuid4().hex[:8]}",
                "FLEET_WORKTREE__BASE_DIR": str(tmp_path / "wt"),
                "FLEET_OPERATOR__ID": "typist", "FLEET_OPERATOR__IS_ADMIN": "false"})
    yield env
    kill_tmux_server(env["FLEET_RUNTIME__TMUX_SOCKET"])


def run(env: dict[str, str], argv: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FLEET_TUI, *argv], env={**env, **extra}, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_every_bad_input_is_one_line_with_its_exit_code(cli_env: dict[str, str], git_repo: Path,
                                                        tmp_path: Path) -> None:
    cases = bad_input_cases(git_repo, tmp_path)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda case: run(cli_env, case[0], tmp_path, **case[1]), cases))
    wrong = []
    for (argv, extra, code, words), done in zip(cases, results):
        shown = " ".join(a if len(a) < 40 else a[:20] + "…" for a in argv)
        lines = done.stderr.splitlines()
        if (done.returncode != code or done.stdout or len(lines) != 1 or not lines[0].startswith("fleet-tui")
                or words not in lines[0] or "Traceback" in done.stderr or len(lines[0]) > 500):
            wrong.append(f"{shown} {extra or ''}: exit {done.returncode} (want {code}), "
                         f"stdout {done.stdout[:200]!r}, stderr {done.stderr[-600:]!r}")
    assert not wrong, "\n".join(wrong)
    # refused input changed nothing: no task was made
    status = run(cli_env, ["status", "--json"], tmp_path)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["tasks"] == []


def test_a_closed_pipe_ends_the_command_quietly(cli_env: dict[str, str], git_repo: Path, tmp_path: Path) -> None:
    spawned = run(cli_env, ["spawn", "long output\nFLEET-DEMO: flood 20000", "--repo", str(git_repo),
                            "--agent", "demo", "--json"], tmp_path)
    assert spawned.returncode == 0, spawned.stderr
    tid = json.loads(spawned.stdout)["task"]["id"]
    deadline = time.monotonic() + 60
    while "usage:" not in run(cli_env, ["logs", tid, "-n", "3"], tmp_path).stdout:
        assert time.monotonic() < deadline, "the demo agent did not finish its flood"
        time.sleep(0.5)
    for argv in (["logs", tid, "-n", "10000"], ["logs", tid, "-n", "10000", "--json"]):
        reader = subprocess.Popen([FLEET_TUI, *argv], env=cli_env, cwd=tmp_path, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)  # as `fleet-tui logs ... | head -1`
        assert reader.stdout is not None and reader.stderr is not None
        assert reader.stdout.readline()
        reader.stdout.close()
        reader.wait(timeout=60)
        stderr = reader.stderr.read().decode()
        reader.stderr.close()
        assert stderr == "" and reader.returncode == 141, (argv, reader.returncode, stderr)


def test_logs_follow_prints_every_line_once(cli_env: dict[str, str], git_repo: Path, tmp_path: Path) -> None:
    spawned = run(cli_env, ["spawn", "slow output\nFLEET-DEMO: stall 3\nFLEET-DEMO: flood 5\nFLEET-DEMO: sleep 2",
                            "--repo", str(git_repo), "--agent", "demo", "--json"], tmp_path)
    assert spawned.returncode == 0, spawned.stderr
    tid = json.loads(spawned.stdout)["task"]["id"]
    deadline = time.monotonic() + 30
    while not run(cli_env, ["logs", tid], tmp_path).stdout:  # the first lines, before the stall ends
        assert time.monotonic() < deadline, "the demo agent printed nothing"
        time.sleep(0.2)
    followed = run(cli_env, ["logs", tid, "-f"], tmp_path)  # ends once the agent has exited
    assert followed.returncode == 0, followed.stderr
    whole = run(cli_env, ["logs", tid, "-n", "1000"], tmp_path).stdout.splitlines()
    assert any("flood line 4" in line for line in whole) and any("usage:" in line for line in whole), whole
    assert followed.stdout.splitlines() == whole, followed.stdout


def stand_in_clis(tmp_path: Path) -> Path:
    """claude, codex and gemini as a user may have them: on PATH, logged in nowhere."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("claude", "codex", "gemini"):
        (bin_dir / name).write_text("#!/bin/sh\necho 'not logged in' >&2\nexit 1\n")
        (bin_dir / name).chmod(0o755)
    return bin_dir


def test_the_demo_agent_runs_until_a_real_one_has_credentials(cli_env: dict[str, str], git_repo: Path,
                                                              tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {**cli_env, "PATH": f"{stand_in_clis(tmp_path)}{os.pathsep}{cli_env['PATH']}", "HOME": str(home)}
    for task_type in ("feature", "refactor", "review"):
        done = run(env, ["spawn", f"a first {task_type}", "--repo", str(git_repo), "--type", task_type, "--json"],
                   tmp_path)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["task"]["agent"] == "demo", result["task"]
        assert "the demo agent runs this task" in result["notice"] and "no credentials" in result["notice"]
    shown = run(env, ["spawn", "said in words too", "--repo", str(git_repo)], tmp_path)
    assert "demo/demo-small" in shown.stdout and "note: the demo agent runs this task" in shown.stdout

    keyed = run({**env, "ANTHROPIC_API_KEY": "sk-ant-test-0000"},
                ["spawn", "with a key", "--repo", str(git_repo), "--json"], tmp_path)
    assert keyed.returncode == 0, keyed.stderr
    assert json.loads(keyed.stdout)["task"]["agent"] == "claude" and json.loads(keyed.stdout)["notice"] is None
    (home / ".codex").mkdir()
    (home / ".codex" / "auth.json").write_text("{}")  # codex's own login
    logged_in = run(env, ["spawn", "after codex login", "--repo", str(git_repo), "--type", "refactor", "--json"],
                    tmp_path)
    assert json.loads(logged_in.stdout)["task"]["agent"] == "codex", logged_in.stdout
    configured = run({**env, "FLEET_AGENTS__ROUTES": '{"review": "gemini"}'},
                     ["spawn", "configured", "--repo", str(git_repo), "--type", "review", "--json"], tmp_path)
    assert json.loads(configured.stdout)["task"]["agent"] == "gemini", configured.stdout


def pipe_processes(log: Path) -> list[str]:
    """Processes whose command line names this log (tmux pipe-pane's `cat >> LOG`)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(log) in cmdline and "tmux" not in cmdline.split(" ", 1)[0]:
            found.append(f"{proc.name}: {cmdline}")
    return found


async def test_two_fleets_keep_apart_and_delete_leaves_nothing(fresh_database: Any, git_repo: Path,
                                                               tmp_path: Path) -> None:
    from fleet_tui.config import tmux_socket_for

    base = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_") and k != "DATABASE_URL"}
    fleets = []
    for name in ("a", "b"):
        data = tmp_path / name
        fleets.append({**base, "FLEET_DATABASE__URL": await fresh_database(), "FLEET_DATA_DIR": str(data),
                       "FLEET_OPERATOR__ID": "typist"})
    sockets = [tmux_socket_for(Path(env["FLEET_DATA_DIR"])) for env in fleets]
    assert sockets[0] != sockets[1]
    try:
        ids = []
        for env in fleets:
            done = run(env, ["spawn", "stay up\nFLEET-DEMO: sleep 120", "--repo", str(git_repo), "--agent", "demo",
                             "--json"], tmp_path)
            assert done.returncode == 0, done.stderr
            ids.append(json.loads(done.stdout)["task"]["id"])
        for env, socket, tid in zip(fleets, sockets, ids):
            sessions = subprocess.run(["tmux", "-L", socket, "list-sessions", "-F", "#{session_name}"],
                                      capture_output=True, text=True).stdout.split()
            assert sessions == [f"fleet-{tid}"], sessions  # its own agent only
            checked = run(env, ["invariants", "--json"], tmp_path)
            inv = {r["id"]: r for r in json.loads(checked.stdout)}["INV-015"]
            assert inv["satisfied"], inv  # the other fleet's agent is not its orphan

        env, socket, tid = fleets[0], sockets[0], ids[0]
        log = Path(env["FLEET_DATA_DIR"]) / "logs" / f"{tid}.log"
        assert log.exists() and pipe_processes(log)
        assert run(env, ["stop", tid], tmp_path).returncode == 0
        deleted = run(env, ["delete", tid], tmp_path)
        assert deleted.returncode == 0, deleted.stderr
        gone = subprocess.run(["tmux", "-L", socket, "has-session", "-t", f"=fleet-{tid}"], capture_output=True)
        assert gone.returncode != 0  # session gone
        assert not log.exists() and pipe_processes(log) == []  # log and its pipe gone
        other = subprocess.run(["tmux", "-L", sockets[1], "has-session", "-t", f"=fleet-{ids[1]}"],
                               capture_output=True)
        assert other.returncode == 0  # the other fleet's agent runs on
    finally:
        for socket in sockets:
            kill_tmux_server(socket)


async def test_a_spawn_from_the_shell_hands_its_lease_on_when_it_exits(cli_env: dict[str, str], git_repo: Path,
                                                                       tmp_path: Path) -> None:
    """`fleet-tui spawn` owns its task until `running`, then exits: a running conductor must be
    able to take the task at once, not after the lease's time to live (it waited ~30 s)."""
    done = run(cli_env, ["spawn", "taken over at once\nFLEET-DEMO: sleep 30", "--repo", str(git_repo),
                         "--agent", "demo", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    task_id = json.loads(done.stdout)["task"]["id"]
    held = await fetch(cli_env["FLEET_DATABASE__URL"],
                       "SELECT owner FROM fleet_leases WHERE task_id = $1 AND expires_at > now()", task_id)
    assert held == [], f"the exited spawn still holds {task_id}: {[r['owner'] for r in held]}"
