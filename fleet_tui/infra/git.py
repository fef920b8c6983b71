"""git through argument lists and asyncio subprocesses, with timeouts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from fleet_tui.infra.proc import ProcResult, run

GIT_ENV_DEFAULTS = {
    "GIT_TERMINAL_PROMPT": "0",  # never hang on a credential prompt
    "GIT_CONFIG_NOSYSTEM": "1",
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
