"""`fleet-tui agents` as a user runs it: the installed console script in its own process,
on a PATH of stand-in CLIs (so it passes whatever the host has): a CLI outside its proven
range, one whose --help lost a flag, one missing, credentials named but never shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FLEET_TUI = str(Path(sys.executable).with_name("fleet-tui"))
SECRET = "sk-ant-do-not-print-this-0123456789"


def stand_in(bin_dir: Path, name: str, version: str, help_text: str) -> None:
    script = bin_dir / name
    script.write_text("#!/bin/sh\n"
                      f'case "$*" in *--version*) echo "{version}";; *) echo "{help_text}";; esac\n')
    script.chmod(0o755)


def run_agents(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    # claude: in range, but its --help no longer lists --permission-prompts
    stand_in(bin_dir, "claude", "2.1.332 (Claude Code)",
             "--output-format --permission-mode --allowedTools --verbose --continue")
    # codex: every flag, but a version nobody proved
    stand_in(bin_dir, "codex", "codex-cli 0.99.0", "--json --sandbox --config --model")
    home = tmp_path / "home"
    (home / ".codex").mkdir(parents=True, exist_ok=True)
    (home / ".codex" / "auth.json").write_text("{}")
    env = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin", "HOME": str(home),
           "ANTHROPIC_API_KEY": SECRET, "FLEET_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run([FLEET_TUI, "agents", *args], env=env, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)


def test_agents_reports_versions_flags_credentials_and_routing(tmp_path: Path) -> None:
    done = run_agents(tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    report = {entry["name"]: entry for entry in json.loads(done.stdout)}
    assert set(report) >= {"claude", "codex", "gemini", "aider", "opencode", "custom", "demo"}
    claude, codex, gemini = report["claude"], report["codex"], report["gemini"]
    assert claude["version"] == "2.1.332" and claude["in_proven_range"] is True
    assert claude["flags_ok"] is False and claude["missing_flags"] == ["--permission-prompts"]
    assert claude["credentials"] == ["ANTHROPIC_API_KEY"]
    assert codex["in_proven_range"] is False and codex["flags_ok"] is True
    assert any(c.startswith("login:") and c.endswith(".codex/auth.json") for c in codex["credentials"])
    assert gemini["path"] is None and "gemini is not on PATH" in gemini["problems"]
    assert "default for review, skipped: goes to demo" in gemini["routing"]
    assert "fallback for every task type" in report["demo"]["routing"]

    text = run_agents(tmp_path)
    assert text.returncode == 0 and SECRET not in text.stdout
    assert "OUT OF RANGE" in text.stdout and "--help no longer lists --permission-prompts" in text.stdout
