"""git through argument lists and asyncio subprocesses, with timeouts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from fleet_tui.infra.proc import ProcResult, run

GIT_ENV_DEFAULTS = {
    "GIT_TERMINAL_PROMPT": "0",  # never hang on a credential prompt
    "GIT_CONFIG_NOSYSTEM": "1",
    # Agents are untrusted code and may write into a repository's git dir: the conductor's
    # own git never runs hooks or an fsmonitor command they could have planted, and works in
    # worktrees an agent's user owns (a container's uid) instead of refusing them.
    "GIT_CONFIG_COUNT": "3",
    "GIT_CONFIG_KEY_0": "core.hooksPath",
    "GIT_CONFIG_VALUE_0": "/dev/null",
    "GIT_CONFIG_KEY_1": "core.fsmonitor",
    "GIT_CONFIG_VALUE_1": "false",
    "GIT_CONFIG_KEY_2": "safe.directory",
    "GIT_CONFIG_VALUE_2": "*",
}


class GitError(Exception):
    def __init__(self, result: ProcResult) -> None:
        cmd = " ".join(result.argv[1:3])
        super().__init__(f"git {cmd} failed ({result.returncode}): {result.output[-500:]}")
        self.result = result


async def git(
    args: Sequence[str],
    *,
    cwd: Path | str,
    timeout_s: float = 60.0,
    check: bool = True,
    stdin: bytes | None = None,
) -> ProcResult:
    env = {**os.environ, **GIT_ENV_DEFAULTS}
    result = await run(["git", *args], cwd=cwd, timeout_s=timeout_s, env=env, stdin=stdin)
    if check and not result.ok:
        raise GitError(result)
    return result


async def git_out(args: Sequence[str], *, cwd: Path | str, timeout_s: float = 60.0) -> str:
    return (await git(args, cwd=cwd, timeout_s=timeout_s)).stdout.strip()
