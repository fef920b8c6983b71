"""Run a program from an argument list (never a shell string) with a timeout."""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping, Sequence


@dataclass(frozen=True)
class ProcResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        return (self.stdout + self.stderr).strip()


class ProcTimeout(Exception):
    def __init__(self, argv: Sequence[str], timeout_s: float, partial: str = "") -> None:
        super().__init__(f"{argv[0]} timed out after {timeout_s:g}s")
        self.argv = tuple(argv)
        self.timeout_s = timeout_s
        self.partial = partial


async def run(
    argv: Sequence[str],
    *,
    cwd: Path | str | None = None,
    timeout_s: float = 60.0,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
) -> ProcResult:
    """Run argv to completion; on timeout kill its whole process group and raise ProcTimeout."""
    if isinstance(argv, str):  # guard against accidental shell-style strings
        raise TypeError("argv must be a sequence of arguments, not a string")
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=str(cwd) if cwd is not None else None,
        env=dict(env) if env is not None else None,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own group, so a timeout kills grandchildren too
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout_s)
    except (TimeoutError, asyncio.CancelledError) as exc:
        _kill_group(proc.pid)
        await proc.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        raise ProcTimeout(argv, timeout_s) from None
    return ProcResult(
        tuple(argv),
        proc.returncode if proc.returncode is not None else -1,
        out.decode(errors="replace"),
        err.decode(errors="replace"),
    )


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
