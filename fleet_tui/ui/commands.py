"""The command palette (`:`): the verbs by name, plus sorts, themes and status filters."""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from textual.command import DiscoveryHit, Hit, Hits, Provider

from fleet_tui.domain.status import TaskStatus


class FleetCommands(Provider):
    def _commands(self) -> list[tuple[str, Callable[[], Any], str]]:
        app: Any = self.app
        main = app.main
        commands: list[tuple[str, Callable[[], Any], str]] = [
            ("new task", main.action_new, "open the spawn form"),
            ("stop selected task", main.action_stop, "kill the agent; the task is cancelled"),
            ("retry selected task", main.action_retry, "retry a failed or rejected task"),
            ("delete selected task", main.action_delete, "asks first"),
            ("merge selected task", main.action_merge, "asks first"),
            ("open detail", main.action_detail, "metadata, log, diff, verdicts, audit"),
            ("help", app.show_help, "every key and its binding id"),
            ("toggle light/dark theme", app.toggle_theme, "textual-light <-> textual-dark"),
            ("clear filter", partial(main.table.set_filter, ""), "show every task"),
        ]
        for name in ("age", "status", "priority", "operator"):
            commands.append((f"sort by {name}", partial(main.table.set_sort, name), ""))
        for status in TaskStatus:
            commands.append((f"filter {status}", partial(main.table.set_filter, str(status)), ""))
        return commands

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
