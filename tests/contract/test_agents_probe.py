"""The pinned real CLIs as `fleet-tui agents` sees them: each proven profile's version is in
its range and its --help still lists every flag the profile passes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROVEN = ["claude", "codex", "gemini", "opencode", "aider"]


def test_each_proven_cli_is_in_range_with_its_flags(agent_bin: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{agent_bin}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path)}
    done = subprocess.run([str(Path(sys.executable).with_name("fleet-tui")), "agents", "--json"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    report = {e["name"]: e for e in json.loads(done.stdout)}
    for agent in PROVEN:
        entry = report[agent]
        assert entry["path"] and entry["path"].startswith(str(agent_bin))
        assert entry["in_proven_range"] is True, entry
        assert entry["flags_ok"] is True, entry["missing_flags"]
