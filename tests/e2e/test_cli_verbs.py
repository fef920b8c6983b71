"""The scripting verbs as a script over SSH would run them: separate `python -m fleet_tui`
processes against a fresh database, --json output parsed, exit codes checked
(0 done, 2 bad input, 3 not found, 4 refused, 5 conflict)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from tests.fixtures.engine import kill_tmux_server


class Cli:
    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd

    async def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "fleet_tui", *args], cwd=self.cwd,
            env={**self.env, **env}, capture_output=True, text=True, timeout=120)

    async def json(self, *args: str) -> Any:
        done = await self.run(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


async def test_cli_verbs_json_and_exit_codes(fresh_database: Any, git_repo: Path, tmp_path: Path) -> None:
    socket = f"fleet-test-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_") and k != "DATABASE_URL"}
    env.update({"FLEET_DATABASE__URL": await fresh_database(), "FLEET_DATA_DIR": str(tmp_path / "data"),
                "FLEET_RUNTIME__TMUX_SOCKET": socket, "FLEET_WORKTREE__BASE_DIR": str(tmp_path / "wt"),
                "FLEET_OPERATOR__ID": "script", "FLEET_OPERATOR__IS_ADMIN": "false"})
    cli = Cli(env, tmp_path)
    try:
        spawned = await cli.json("spawn", "nightly job\nFLEET-DEMO: sleep 60", "--repo", str(git_repo))
        assert spawned["created"] is True and spawned["task"]["status"] == "running"
        tid = spawned["task"]["id"]
        status = await cli.json("status")
        assert status["operator_id"] == "script" and [t["id"] for t in status["tasks"]] == [tid]
        shown = await cli.json("show", tid)
        assert shown["task"]["id"] == tid and all("prompt" not in e for e in shown["executions"])

        deadline = time.monotonic() + 20
        while True:
            logs = await cli.run("logs", tid, "-n", "5", "--json")
            assert logs.returncode == 0, logs.stderr
            lines = [json.loads(line)["line"] for line in logs.stdout.splitlines()]
            if any("usage:" in line for line in lines):
                break
            assert time.monotonic() < deadline, lines
            await asyncio.sleep(0.5)

        for verb, code in (("delete", 5), ("retry", 5), ("merge", 5)):
            refused = await cli.run(verb, tid, "--json")
            assert refused.returncode == code, (verb, refused.stderr)
            assert refused.stdout == "" and refused.stderr.startswith("fleet-tui: ")
        missing = await cli.run("show", "000000000000", "--json")
        assert missing.returncode == 3 and "not found" in missing.stderr
        all_refused = await cli.run("status", "--all", "--json")
        assert all_refused.returncode == 4
        observer = await cli.run("spawn", "x", "--repo", str(git_repo), "--json", FLEET_OPERATOR__TIER="observer")
        assert observer.returncode == 4 and "needs tier builder" in observer.stderr
        bad_repo = await cli.run("spawn", "x", "--repo", str(tmp_path / "nope"), "--json")
        assert bad_repo.returncode == 2 and "repo:" in bad_repo.stderr

        stopped = await cli.json("stop", tid)
        assert stopped["status"] == "cancelled"
        assert (await cli.json("delete", tid)) == {"id": tid, "deleted": True}
        assert (await cli.run("show", tid)).returncode == 3

        quick = await cli.json("spawn", "quick\nFLEET-DEMO: flood 3", "--repo", str(git_repo))
        followed = await cli.run("logs", quick["task"]["id"], "--follow", "--json")
        assert followed.returncode == 0  # ends by itself once the agent has exited
        assert any("usage:" in json.loads(line)["line"] for line in followed.stdout.splitlines())

        # human output: a description's escape sequences never reach the terminal
        sneaky = await cli.json("spawn", "retitle\x1b]0;owned\x07 me\x1b[2J\nFLEET-DEMO: sleep 60",
                                "--repo", str(git_repo))
        for verb in ("status", "show"):
            shown = await cli.run(verb, *([sneaky["task"]["id"]] if verb == "show" else []))
            assert shown.returncode == 0 and "retitle me" in shown.stdout, shown.stdout
            assert "\x1b" not in shown.stdout and "owned" not in shown.stdout
    finally:
        kill_tmux_server(socket)
