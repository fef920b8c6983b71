"""The main screen's footer: the verbs that do not apply to the selected task are hidden in
place instead of the whole footer being rebuilt.

Textual's Footer recomposes whenever the screen's bindings change: it unmounts every key,
mounts new ones (styles matched afresh for each) and lays the screen out again. On the main
screen that happens on every cursor move between tasks of different statuses, and it cost
more than the move itself (tens of milliseconds on a 2-core machine). This footer is
composed with every key the screen has, then only shows, hides or dims its keys; it
recomposes only when a key it does not have appears (e.g. after a keymap change)."""

from __future__ import annotations

from collections.abc import Iterable

from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from fleet_tui.ui.verbs import TaskVerbActions


class VerbFooter(Footer):
    def compose(self) -> Iterable[Widget]:
        screen = self.screen if isinstance(self.screen, TaskVerbActions) else None
        if screen is not None:
            screen.every_verb = True  # check_action shows every verb while the keys are made
        try:
            widgets = list(super().compose())
        finally:
            if screen is not None:
                screen.every_verb = False
        shown = self._shown_now()
        for widget in widgets:
            if isinstance(widget, FooterKey) and not widget.has_class("-command-palette"):
                self._set_state(widget, shown)
        yield from widgets

    def bindings_changed(self, screen: Screen[object]) -> None:
        if screen is self.screen and self._bindings_ready and self._update_in_place():
            return
        super().bindings_changed(screen)

    def _shown_now(self) -> dict[tuple[str, str], bool]:
        """(action, key) -> enabled, for the bindings the footer shows now."""
        return {(b.action, b.key): enabled for (_, b, enabled, _) in self.screen.active_bindings.values()
                if b.show}

    @staticmethod
    def _set_state(key: FooterKey, shown: dict[tuple[str, str], bool]) -> None:
        enabled = shown.get((key.action, key.key))
        key.display = enabled is not None
        disabled = enabled is False
        if disabled != key._disabled:
            key._disabled = disabled
            key.set_class(disabled, "-disabled")

    def _update_in_place(self) -> bool:
        keys = [k for k in self.query(FooterKey) if not k.has_class("-command-palette")]
        if not keys:
            return False
        shown = self._shown_now()
        if not set(shown) <= {(k.action, k.key) for k in keys} | self._palette_keys():
            return False  # a key this footer was not composed with: compose again
        for key in keys:
            self._set_state(key, shown)
        return True

    def _palette_keys(self) -> set[tuple[str, str]]:
        return {(k.action, k.key) for k in self.query(FooterKey) if k.has_class("-command-palette")}
