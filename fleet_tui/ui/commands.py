"""The command palette (`:`): the verbs by name with their keys, plus sorts, themes and
status filters."""

from __future__ import annotations

from functools import partial
from collections.abc import Callable

from textual.app import App
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.keys import format_key
from textual.screen import Screen

from fleet_tui.domain.status import TaskStatus
from fleet_tui.ui.room import control_room
from fleet_tui.ui.screens.main import MainScreen

Command = Callable[[], object]


def main_keys(app: App[object], main: Screen[None]) -> dict[str, str]:
    """action -> the key that runs it now (keymap applied), as the footer writes it."""
    keys: dict[str, str] = {}
    for bindings in (main._bindings, app._bindings):
        for key, found in bindings.key_to_bindings.items():
            for binding in found:
                keys.setdefault(binding.action, format_key(key))
    return keys


class FleetCommands(Provider):
    def _commands(self) -> list[tuple[str, Command, str]]:
        main = self.app.screen_stack[0]
        assert isinstance(main, MainScreen), "the control room's first screen is its main screen"
        room = control_room(self.app)
        keys = main_keys(self.app, main)
        commands: list[tuple[str, Command, str]] = [
            (f"{name} (key {keys[action]})" if keys.get(action) else name, callback, help_text)
            for name, action, callback, help_text in (
                ("new task", "new", main.action_new, "open the spawn form"),
                ("open detail", "detail", main.action_detail, "metadata, log, diff, verdicts, audit"),
                ("logs of selected task", "logs", main.action_logs, "the agent's output, live"),
                ("diff of selected task", "diff", main.action_diff, "the change against its base"),
                ("attach to selected agent", "attach", main.action_attach, "put your terminal on the agent"),
                ("preview selected agent's output", "preview", main.action_preview,
                 "show or hide the output pane under the table"),
                ("stop selected task", "stop", main.action_stop, "kill the agent; the task is cancelled"),
                ("retry selected task", "retry", main.action_retry, "retry a failed or rejected task"),
                ("delete selected task", "delete", main.action_delete, "asks first"),
                ("merge selected task", "merge", main.action_merge, "asks first"),
                ("refresh", "refresh", main.action_refresh, "read every task again from the database"),
                ("help", "help", room.show_help, "every key and its binding id"),
                ("toggle light/dark theme", "toggle_theme", room.toggle_theme, "textual-light <-> textual-dark"),
            )
        ]
        commands.append(("clear filter", partial(main.table.set_filter, ""), "show every task"))
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
