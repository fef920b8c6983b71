"""Side panels: governor headroom per operator and the engine's health."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from fleet_tui.domain.models import TaskRecord
from fleet_tui.domain.status import LIVE_STATUSES, TaskStatus


class HeadroomPanel(Static):
    """Live/limit and queued per operator, fleet capacity, budget."""

    def show(self, tasks: dict[str, TaskRecord], *, me: str, my_limit: int, fleet_capacity: int,
             budget: str | None = None) -> None:
        live: dict[str, int] = {}
        queued: dict[str, int] = {}
        for task in tasks.values():
            live.setdefault(task.operator_id, 0)
            queued.setdefault(task.operator_id, 0)
            if task.status in LIVE_STATUSES:
                live[task.operator_id] += 1
            if task.status in (TaskStatus.PROPOSED, TaskStatus.RETRYING):
                queued[task.operator_id] += 1
        live.setdefault(me, 0)
        queued.setdefault(me, 0)
        grid = Table.grid(padding=(0, 1))
        grid.add_column()
        grid.add_column(justify="right")
        grid.add_column(justify="right")
        grid.add_row(Text("operator", style="bold"), Text("live", style="bold"), Text("queued", style="bold"))
        for op in sorted(live, key=lambda o: (o != me, o)):
            shown = f"{live[op]}/{my_limit}" if op == me else str(live[op])
            style = "bold reverse" if op == me and live[op] >= my_limit else ""
            grid.add_row(op, Text(shown, style=style), str(queued[op]))
        total = sum(live.values())
        grid.add_row("", "", "")
        grid.add_row(Text("fleet", style="bold"), f"{total}/{fleet_capacity}", "")
        grid.add_row(Text("budget", style="bold"), budget or "no limit", "")
        self.update(grid)


class HealthPanel(Static):
    """Monitor cycles and timing, bus drops, and breakers/DLQ/outbox when the engine has them."""

    def show(self, health: dict[str, Any]) -> None:
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold")
        grid.add_column()
        running = health.get("running")
        grid.add_row("monitor", Text("running" if running else "stopped",
                                     style="green" if running else "red"))
        grid.add_row("cycles", str(health.get("cycles", 0)))
        grid.add_row("last cycle", f"{health.get('last_cycle_ms', 0)} ms")
        grid.add_row("errors", str(health.get("errors", 0)))
        if health.get("degraded"):
            grid.add_row("degraded", ", ".join(health["degraded"]))
        for key in ("outbox_lag", "open_breakers", "dlq_depth", "bus_dropped"):
            if health.get(key) is not None:
                grid.add_row(key.replace("_", " "), str(health[key]))
        self.update(grid)
