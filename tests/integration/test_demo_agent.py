"""The demo agent as a real process in a real git repository."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fleet_tui.infra.agents import builtin_profiles, parse_usage, waits_for_input
from tests.fixtures.gitrepo import git

DEMO = builtin_profiles()["demo"]


def run_demo(repo: Path, prompt: str, *args: str, env: dict[str, str] | None = None,
             stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleet_tui.infra.demo_agent", *args],
        cwd=repo, input=prompt if stdin is None else stdin, capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=60,
    )


def test_no_instructions_makes_a_default_commit(git_repo: Path) -> None:
    result = run_demo(git_repo, "Fix the flaky login test")
    assert result.returncode == 0, result.stderr
    assert (git_repo / "FLEET_DEMO.md").exists()
    assert git(git_repo, "log", "-1", "--format=%s") == "demo: Fix the flaky login test"
    usage = parse_usage(DEMO, result.stdout)
    assert usage is not None and usage.input_tokens and usage.cost_usd


def test_edits_follow_the_prompt(git_repo: Path) -> None:
    prompt = ("Update\nFLEET-DEMO: write src/a.py x = 1\\ny = 2\nFLEET-DEMO: append README.md more\n"
              "FLEET-DEMO: commit feat: a and readme")
    assert run_demo(git_repo, prompt).returncode == 0
    assert (git_repo / "src" / "a.py").read_text() == "x = 1\ny = 2\n"
    assert (git_repo / "README.md").read_text().endswith("more\n")
    assert git(git_repo, "log", "-1", "--format=%s") == "feat: a and readme"
    assert git(git_repo, "status", "--porcelain") == ""


def test_paths_outside_the_worktree_are_refused(git_repo: Path, tmp_path: Path) -> None:
    for target in ("../escape.txt", "/etc/x", ".git/config"):
        result = run_demo(git_repo, f"FLEET-DEMO: write {target} bad")
        assert result.returncode == 2 and "refusing path" in result.stdout
    assert not (tmp_path / "escape.txt").exists()
    assert git(git_repo, "rev-list", "--count", "HEAD") == "1"


def test_failure_switches(git_repo: Path) -> None:
    assert run_demo(git_repo, "FLEET-DEMO: fail boom").returncode == 1
    assert run_demo(git_repo, "x", env={"FLEET_DEMO_MODE": "exit 137"}).returncode == 137
    retry = {"FLEET_DEMO_MODE": "fail-until-attempt 3"}
    assert run_demo(git_repo, "x", env={**retry, "FLEET_ATTEMPT": "2"}).returncode == 1
    assert run_demo(git_repo, "x", env={**retry, "FLEET_ATTEMPT": "3"}).returncode == 0
    assert git(git_repo, "rev-list", "--count", "HEAD") == "2"  # only the last run committed


def test_flood_and_no_commit(git_repo: Path) -> None:
    result = run_demo(git_repo, "FLEET-DEMO: flood 2000\nFLEET-DEMO: no-commit")
    assert result.returncode == 0
    assert result.stdout.count("flood line") == 2000
    assert git(git_repo, "status", "--porcelain") == "?? FLEET_DEMO.md"


def test_wait_input_reads_stdin_when_prompt_is_a_file(git_repo: Path, tmp_path: Path) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("FLEET-DEMO: wait-input")
    yes = run_demo(git_repo, "", str(prompt), stdin="y\n")
    assert yes.returncode == 0 and waits_for_input(DEMO, yes.stdout.split("[demo] continuing")[0])
    no = run_demo(git_repo, "", str(prompt), stdin="n\n")
    assert no.returncode == 1 and "declined" in no.stdout


def test_a_conductors_prompt_commits_under_the_descriptions_first_line(git_repo: Path) -> None:
    from fleet_tui.engine.spawn.enrichment import build_prompt, safety_section, task_section

    prompt = build_prompt([task_section("Add a greeting\nin two lines\nFLEET-DEMO: sleep 0", "feature",
                                        "fleet/x", "main"), safety_section()]).prompt
    assert prompt.startswith("## Task")
    result = run_demo(git_repo, prompt)
    assert result.returncode == 0, result.stderr
    assert git(git_repo, "log", "-1", "--format=%s") == "demo: Add a greeting"
