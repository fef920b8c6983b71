"""Every key, with its binding id (what to put in the config's keymap to remap it)."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.keys import format_key
from textual.screen import ModalScreen
from textual.widgets import Static

from fleet_tui.ui.format import add_plain_row


def key_label(binding: Binding, keymap: dict[str, str]) -> str:
    keys = keymap.get(binding.id or "", binding.key)
    return ", ".join(format_key(k.strip()) for k in keys.split(","))


def bindings_table(groups: Iterable[tuple[str, list[Binding]]], keymap: dict[str, str]) -> Table:
    table = Table(box=None, padding=(0, 2), show_header=True, header_style="bold")
    table.add_column("key")
    table.add_column("does")
    table.add_column("binding id", style="dim")
    for title, bindings in groups:
        add_plain_row(table, Text(title, style="bold underline"), "", "")
        for binding in bindings:
            add_plain_row(table, key_label(binding, keymap), binding.tooltip or binding.description, binding.id or "")
    return table


def close_keys(bindings: Iterable[BindingType], keymap: dict[str, str]) -> str:
    keys = [key_label(b, keymap) for b in bindings if isinstance(b, Binding) and b.action == "dismiss"]
    return " or ".join(", ".join(keys).split(", "))


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close", id="help.close")]

    def __init__(self, groups: list[tuple[str, list[Binding]]], keymap: dict[str, str]) -> None:
        super().__init__(classes="dialog-screen")
        self.groups = groups
        self.keymap = keymap

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="help"):
            yield Static(Text.assemble(("fleet-tui keys", "bold"), "  (remap any of them in fleet.toml: "
                                       '[keymap] id = "keys")'))
            yield Static(Text.assemble("Close this help with ", (close_keys(self.BINDINGS, self.keymap), "bold"), "."),
                         id="help-close")
            yield Static(bindings_table(self.groups, self.keymap))
