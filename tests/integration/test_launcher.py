"""The launcher (infra/launcher.py) in its own process, as tmux and containers start it."""

from __future__ import annotations

import json
import marshal
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("form", ["json", "marshal"])  # a container's spec, a host's (tmux)
def test_the_agent_is_told_the_directory_it_runs_in(tmp_path: Path, form: str) -> None:
    """PWD is where the agent runs, whatever the starter's was: opencode takes its project
    from PWD, and with the conductor's it edited the conductor's own directory."""
    work = tmp_path / "worktree"
    work.mkdir()
    (tmp_path / "prompt.txt").write_text("hi")
    spec = tmp_path / f"launch.{form}"
    fields = {
        "argv": [sys.executable, "-c", "import os; print(os.environ['PWD'], os.getcwd())"],
        "cwd": str(work), "prompt_file": str(tmp_path / "prompt.txt"), "prompt_via": "stdin",
        "exit_file": str(tmp_path / "exit")}
    spec.write_bytes(json.dumps(fields).encode() if form == "json" else marshal.dumps(fields))
    done = subprocess.run([sys.executable, "-m", "fleet_tui.infra.launcher", str(spec)], capture_output=True,
                          text=True, cwd=tmp_path, env={**os.environ, "PWD": str(tmp_path)}, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(work), str(work)]
    assert (tmp_path / "exit").read_text() == "0" and not spec.exists()
