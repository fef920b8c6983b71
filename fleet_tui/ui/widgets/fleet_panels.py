"""Side panels: governor headroom per operator and the engine's health.

Both repaint only when what they show changed, and ask for a layout pass only when their
height changed: a Static update with layout re-arranges the whole screen, which costs more
than the frame it sits in when batches arrive many times a second."""

from __future__ import annotations

import os
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from fleet_tui.ui.format import plain, short_path

# thresholds for the warning colours of the health panel
OUTBOX_LAG_WARN_S = 5.0
OUTBOX_LAG_ALERT_S = 60.0

Row = tuple[str, str, str]  # label, value, style ("" | "ok" | "warn" | "alert")


class _Panel(Static):
    _shown: tuple[Any, ...] | None = None
    _height = -1

    def _show(self, figures: tuple[Any, ...], grid: RenderableType) -> None:
        """Show grid for these figures; lay the screen out again only if its height changed
        (values wrap in the panel's width, so the height is measured, not counted)."""
        self._shown = figures
        width = self.content_size.width
        console = self.app.console
        height = len(console.render_lines(grid, console.options.update_width(width), pad=False)) if width else -1
        layout = height != self._height or height < 0
        self._height = height
        self.update(grid, layout=layout)
        if layout:
            # Textual counts a layout request only when none is pending, and caches the box
            # model by that count: a request still pending from before this content (on Python
            # 3.14, whose loop runs the idle check later) left the panel at its old height, one
            # line. Asking again once that one is done lays it out with the new content.
            self.call_after_refresh(self.refresh, layout=True)

    def forget(self) -> None:
        """Show the next figures even if they are the same (e.g. in a new theme's colours)."""
        self._shown = None


class HeadroomPanel(_Panel):
    """Slots held/limit and queued per operator, fleet capacity, agents running, budget. A
    slot is held by every unfinished task, ready ones too (until merged): what the governor
    counts; the agents running are fewer."""

    def show(self, live: dict[str, int], queued: dict[str, int], *, me: str, my_limit: int,
             fleet_capacity: int, budget: str | None = None, agents: int = 0) -> None:
        operators = sorted(set(live) | set(queued) | {me}, key=lambda o: (o != me, o))
        rows = tuple((op, f"{live.get(op, 0)}/{my_limit}" if op == me else str(live.get(op, 0)),
                      str(queued.get(op, 0))) for op in operators)
        totals = (f"{sum(live.values())}/{fleet_capacity}", budget or "no limit", str(agents))
        mine_full = live.get(me, 0) >= my_limit
        figures = (rows, totals, mine_full)
        if figures == self._shown:
            return
        grid = Table.grid(padding=(0, 1))
        grid.add_column()
        grid.add_column(justify="right")
        grid.add_column(justify="right")
        grid.add_row(Text("operator", style="bold"), Text("slots", style="bold"), Text("queued", style="bold"))
        for op, shown, n_queued in rows:
            grid.add_row(op, Text(shown, style="bold reverse" if op == me and mine_full else ""), n_queued)
        grid.add_row("", "", "")
        grid.add_row(Text("fleet", style="bold"), totals[0], "")
        grid.add_row(Text("agents running", style="bold"), totals[2], "")
        grid.add_row(Text("budget", style="bold"), totals[1], "")
        self._show(figures, grid)


def health_rows(health: dict[str, Any]) -> list[Row]:
    """What the health panel shows, from the monitor's in-process figures merged with the
    fleet's (engine.ops.metrics via fleet_health): rows only for the figures that exist."""
    running = bool(health.get("running"))
    rows: list[Row] = [("monitor", "running" if running else "stopped", "ok" if running else "alert")]
    if "conductors" in health:  # an observer: the fleet's monitors run in its conductors
        rows.append(("conductors", str(health["conductors"]), "" if health["conductors"] else "alert"))
    rows.append(("cycles", f"{health.get('cycles', 0)} ({health.get('last_cycle_ms', 0)} ms)", ""))
    errors = int(health.get("errors") or 0)
    rows.append(("errors", str(errors), "warn" if errors else ""))
    reasons = health.get("degraded_reasons") or {}
    for item in health.get("degraded") or []:
        reason = reasons.get(item)
        rows.append(("degraded", f"{item}: {reason}" if reason else str(item), "warn"))
    lag = health.get("outbox_lag_seconds")
    if lag is not None:
        pending = health.get("outbox_pending")
        text = f"{lag:.1f} s" + (f" ({pending} pending)" if pending else "")
        rows.append(("outbox lag", text,
                     "alert" if lag > OUTBOX_LAG_ALERT_S else "warn" if lag > OUTBOX_LAG_WARN_S else ""))
    if health.get("dlq_depth") is not None:
        dlq = int(health["dlq_depth"])
        rows.append(("dead letters", str(dlq), "alert" if dlq else ""))
    breakers = health.get("open_breakers")
    if breakers is not None:
        count = breakers if isinstance(breakers, int) else len(breakers)
        names = "" if isinstance(breakers, int) else f" ({', '.join(map(str, breakers))})"
        rows.append(("breakers", f"{count} open{names}" if count else "all closed", "alert" if count else ""))
    if health.get("spawn_queue_depth") is not None:
        queued = int(health["spawn_queue_depth"])
        rows.append(("spawn queue", str(queued), "warn" if queued else ""))
    for warning in health.get("agent_warnings") or []:  # a CLI outside its proven versions
        rows.append(("agent", str(warning), "warn"))
    if health.get("bus_dropped"):
        rows.append(("bus dropped", str(health["bus_dropped"]), "warn"))
    if health.get("fleet_error"):
        rows.append(("fleet figures", str(health["fleet_error"]), "warn"))
    if health.get("log"):
        rows.append(("log", str(health["log"]), ""))  # where every reason is told in full
    return rows


class HealthPanel(_Panel):
    """Monitor status and timing, outbox lag, dead letters, open breakers, spawn queue depth,
    agent CLIs outside their proven versions and bus drops: whichever the engine has; then
    where the log is, on a line of its own (a path folded over four lines read as noise)."""

    _health: dict[str, Any] | None = None

    def show(self, health: dict[str, Any]) -> None:
        self._health = health
        rows = tuple(health_rows(health))
        width = self.content_size.width
        if (rows, width) == self._shown:
            return
        theme = self.app.current_theme
        colours = {"ok": theme.success or "green", "warn": theme.warning or "yellow",
                   "alert": theme.error or "red", "": ""}
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")  # a reason shows whole, over lines
        for label, value, level in rows:
            if label == "log":
                continue
            style = colours[level] + (" bold" if level == "alert" and label != "monitor" else "")
            grid.add_row(label, plain(value, style=style.strip()))  # reasons quote error text
        log = next((value for label, value, _ in rows if label == "log"), None)
        if log is None:
            self._show((rows, width), grid)
            return
        grid.add_row("log", "")
        where = Text(short_path(log, width or len(log), home=os.path.expanduser("~")), no_wrap=True)
        self._show((rows, width), Group(grid, where))

    def on_resize(self) -> None:
        if self._health is not None:  # the log's line is fitted to the width
            self.show(self._health)
