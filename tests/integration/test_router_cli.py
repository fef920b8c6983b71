"""`fleet-tui routes` and `fleet-tui dlq` as a script would run them (a subprocess on a
fresh database): override, refusal naming the field with exit 2, show, delete, dead letters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SEQ = {"name": "quiet", "steps": [{"name": "note", "adapter": "notify", "params": {"kind": "completed"}}]}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fleet_tui", *args], env=env, capture_output=True,
                          text=True, timeout=60)


async def test_routes_and_dlq_verbs(fresh_database, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_") and k != "DATABASE_URL"}
    env.update({"FLEET_DATABASE__URL": await fresh_database(), "FLEET_DATA_DIR": str(tmp_path / "data"),
                "FLEET_OPERATOR__ID": "scripter", "FLEET_OPERATOR__IS_ADMIN": "false"})
    bad = cli(env, "routes", "set", "sequence", "--data",
              json.dumps({"name": "bad", "steps": [{"name": "x", "adapter": "teleport"}]}))
    assert bad.returncode == 2 and "steps.0.adapter: unknown adapter 'teleport'" in bad.stderr
    ok = cli(env, "routes", "set", "sequence", "--data", json.dumps(SEQ))
    assert ok.returncode == 0, ok.stderr
    assert cli(env, "routes", "set", "route", "--data",
               json.dumps({"event_type": "task.merged", "sequence_name": "quiet"})).returncode == 0
    shown = json.loads(cli(env, "routes", "show", "route", "task.merged", "--json").stdout)
    assert shown["source"] == "override" and shown["effective"]["sequence_name"] == "quiet"
    listed = cli(env, "routes", "list").stdout
    assert "task.merged" in listed and "scripter" in listed and "platform" in listed
    platform = cli(env, "routes", "delete", "route", "task.merged", "--platform")
    assert platform.returncode == 4 and "admin" in platform.stderr
    assert cli(env, "routes", "delete", "route", "task.merged").returncode == 0
    again = json.loads(cli(env, "routes", "show", "route", "task.merged", "--json").stdout)
    assert again["source"] == "platform"
    assert json.loads(cli(env, "dlq", "list", "--json").stdout) == []
    missing = cli(env, "dlq", "retry", "42")
    assert missing.returncode == 3 and "dead letter 42 not found" in missing.stderr
