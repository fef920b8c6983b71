"""A prompt's repository facts (some files, recent commits on the base) come from the base
commit. They are kept by commit, so a second spawn on the same base starts no git process
for them, and a new commit on the base is in the next prompt."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fleet_tui.domain.models import SpawnRequest
from fleet_tui.store import executions
from tests.fixtures.engine import operator
from tests.fixtures.gitrepo import git


def section(prompt: str, label: str) -> str:
    return prompt.split(f"## {label}\n", 1)[1].split("\n## ", 1)[0]


async def test_repository_facts_follow_the_base_commit_and_are_read_once(
        make_conductor: Any, git_repo: Path, monkeypatch: Any) -> None:
    conductor = await make_conductor()
    op = operator()
    started: list[tuple[str, ...]] = []
    real_exec = asyncio.create_subprocess_exec

    async def counting(*argv: Any, **kw: Any) -> Any:
        started.append(tuple(str(a) for a in argv))
        return await real_exec(*argv, **kw)
    monkeypatch.setattr(asyncio, "create_subprocess_exec", counting)

    async def prompt_of(description: str) -> str:
        started.clear()
        result = await conductor.spawn(op, SpawnRequest(description=description + "\nFLEET-DEMO: sleep 30",
                                                        repo=str(git_repo), agent="demo"))
        [run] = await executions.list_for_task(conductor.parts.db, result.task.id, operator=None)
        return run["prompt"]

    def lookups() -> list[str]:
        return [argv[1] for argv in started if argv[0] == "git" and argv[1] in ("ls-tree", "log")]

    first = await prompt_of("first")
    assert "Some files: README.md, app.py" in first and '"initial commit"' in first
    assert sorted(lookups()) == ["log", "ls-tree"]
    second = await prompt_of("second")
    assert lookups() == []  # the same base commit: its facts were kept
    for label in ("Repository", "Recently merged changes"):
        assert section(second, label) == section(first, label)

    (git_repo / "later.py").write_text("x = 1\n")
    git(git_repo, "add", "later.py")
    git(git_repo, "commit", "-q", "-m", "add later")
    third = await prompt_of("third")
    assert sorted(lookups()) == ["log", "ls-tree"]
    assert "later.py" in third and '"add later"' in third
