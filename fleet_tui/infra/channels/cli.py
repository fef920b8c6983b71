"""The CLI line, the channel of last resort: `[FLEET] <type> | <task id> | <summary>`."""

from __future__ import annotations

import sys
from typing import TextIO

from fleet_tui.domain.text import one_line
from fleet_tui.infra.channels.base import Notification


def cli_line(n: Notification) -> str:
    return f"[FLEET] {n.type} | {n.task_id or '-'} | {one_line(n.summary)}"


class CliChannel:
    name = "cli"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream  # None: sys.stderr at send time (tests may swap it)

    async def send(self, n: Notification) -> None:
        stream = self._stream or sys.stderr
        stream.write(cli_line(n) + "\n")
        stream.flush()
