"""An installed agent CLI outside the versions its profile was proven on: `fleet-tui agents`
says so, and the control room's health panel warns, as a user sees them (the console script;
the room in a real tmux terminal). The CLI is a stand-in that answers --version and --help."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any
from collections.abc import AsyncIterator

import pytest_asyncio

from fleet_tui.engine.choice.agents_report import version_warnings
from tests.e2e.terminal import FLEET_TUI, ControlRoom

OLD_CLI = "oldagent"
PROFILE = {"command": [OLD_CLI, "run"], "version_command": [OLD_CLI, "--version"], "proven_versions": ">=1.4.0,<1.5",
           "help_command": [OLD_CLI, "--help"], "required_flags": ["--run"]}


def stand_in(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    cli = bin_dir / OLD_CLI
    cli.write_text('#!/bin/sh\ncase "$1" in --version) echo "oldagent 1.3.9";; *) echo "usage: oldagent --run";; esac\n')
    cli.chmod(0o755)
    return bin_dir


def env_with(bin_dir: Path) -> dict[str, str]:
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "FLEET_AGENTS__PROFILES": json.dumps({OLD_CLI: PROFILE})}


@pytest_asyncio.fixture
async def room(fresh_database: Any, git_repo: Path, tmp_path: Path) -> AsyncIterator[ControlRoom]:
    made = ControlRoom(tmp_path / "room", await fresh_database(), git_repo, extra_env=env_with(stand_in(tmp_path)))
    try:
        yield made
    finally:
        made.close()


async def test_the_health_panel_warns_of_a_cli_outside_its_proven_range(room: ControlRoom) -> None:
    report = subprocess.run([str(FLEET_TUI), "agents", "--json"], env=room.env(), capture_output=True, text=True,
                            timeout=300)
    assert report.returncode == 0, report.stderr
    entry = next(e for e in json.loads(report.stdout) if e["name"] == OLD_CLI)
    assert entry["version"] == "1.3.9" and entry["in_proven_range"] is False and entry["flags_ok"] is True
    assert version_warnings([entry]) == [f"{OLD_CLI} 1.3.9 is outside the proven range >=1.4.0,<1.5"]

    await room.start()
    warning = f"agent {OLD_CLI} 1.3.9 is outside the proven range >=1.4.0,<1.5"
    await room.term.wait_for(lambda screen: warning in side_panel(screen), 120, what="the warning")
    room.assert_no_traceback()


def side_panel(screen: str) -> str:
    """The side panels' text as one line (the panel is narrow: values wrap over lines)."""
    return " ".join(" ".join(line.rsplit("▏", 1)[-1].split()) for line in screen.splitlines() if "▏" in line)


def test_only_installed_clis_outside_their_range_or_missing_flags_are_warned_of() -> None:
    report = [
        {"name": "claude", "path": "/bin/claude", "version": "2.1.332", "proven_versions": ">=2.1.300,<2.2",
         "in_proven_range": True, "flags_ok": True, "missing_flags": []},
        {"name": "codex", "path": "/bin/codex", "version": "0.180.0", "proven_versions": ">=0.169.0,<0.172",
         "in_proven_range": False, "flags_ok": False, "missing_flags": ["--sandbox"]},
        {"name": "gemini", "path": None, "version": None, "proven_versions": ">=0.61.0,<0.62",
         "in_proven_range": None, "flags_ok": None, "missing_flags": []},
        {"name": "demo", "path": "(built in)", "in_proven_range": None, "flags_ok": True, "missing_flags": []},
    ]
    assert version_warnings(report) == ["codex 0.180.0 is outside the proven range >=0.169.0,<0.172",
                                        "codex: --help no longer lists --sandbox"]
