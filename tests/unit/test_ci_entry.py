"""CI (.ci/run) runs what the README tells a developer to run, and the whole suite on the
oldest and on the newest Python that scripts/dev supports (issue 19: "the suite on the oldest
and newest supported Python from the lock")."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def commands(path: Path) -> list[list[str]]:
    """The script's command lines as argument lists, comments dropped."""
    found = []
    for line in path.read_text().replace("\\\n", " ").splitlines():  # continued lines joined
        words = shlex.split(line, comments=True)
        if words:
            found.append(words)
    return found


def readme_test_command() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README.md has no bash block"
    tests = [words for words in (shlex.split(line, comments=True) for line in block.group(1).splitlines())
             if words[-1:] == ["test"]]
    assert len(tests) == 1, tests
    return tests[0]


def supported_pythons() -> list[str]:
    match = re.search(r'^SUPPORTED_PYTHONS="([^"]+)"', (ROOT / "scripts" / "dev").read_text(), re.M)
    assert match
    return match.group(1).split()


def test_ci_runs_the_readme_test_command() -> None:
    assert readme_test_command() == ["bash", "scripts/dev", "test"]
    assert readme_test_command() in commands(ROOT / ".ci" / "run")


def test_ci_runs_the_whole_suite_on_the_newest_supported_python() -> None:
    versions = supported_pythons()
    assert versions == sorted(versions, key=lambda v: tuple(map(int, v.split("."))))
    ci = commands(ROOT / ".ci" / "run")
    # `scripts/dev test` is the oldest (.venv, the machine's python3: 3.11 here); the newest by
    # name, with no pytest arguments (the whole suite, not a subset)
    assert ["bash", "scripts/dev", "test-python", versions[-1]] in ci, ci


def test_ci_lints_before_it_tests() -> None:
    ci = commands(ROOT / ".ci" / "run")
    lint, test = ["bash", "scripts/dev", "lint"], readme_test_command()
    assert lint in ci and ci.index(lint) < ci.index(test), ci
