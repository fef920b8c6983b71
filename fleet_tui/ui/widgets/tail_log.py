"""A Log that follows the tail until the operator scrolls up, then counts what is new."""

from __future__ import annotations

from typing import Any

from textual.reactive import reactive
from textual.widgets import Log

from fleet_tui.domain.text import strip_ansi


class TailLog(Log):
    unseen: reactive[int] = reactive(0)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_lines=kwargs.pop("max_lines", 20_000), highlight=False, **kwargs)
        self.received = 0

    def write_batch(self, lines: list[str]) -> None:
        following = self.is_vertical_scroll_end
        self.write_lines([strip_ansi(line) for line in lines])
        self.received += len(lines)
        if not following:
            self.unseen += len(lines)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self.is_vertical_scroll_end:
            self.unseen = 0

    def follow(self) -> None:
        self.scroll_end(animate=False, immediate=True)
        self.unseen = 0
