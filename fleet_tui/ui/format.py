"""How records look in cells: pure functions, the clock injected so screenshots are stable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, UTC
from collections.abc import Callable

from rich.table import Table
from rich.text import Text
from textual.theme import Theme

from fleet_tui.domain.models import TaskRecord
from fleet_tui.domain.status import TaskStatus
from fleet_tui.domain.text import strip_ansi

Clock = Callable[[], datetime]
S = TaskStatus
DESCRIPTION_MAX = 200  # of a description's first line, what a table cell keeps


def utc_now() -> datetime:
    return datetime.now(UTC)


def plain(text: str, style: str = "") -> Text:
    """Text shown as written: never parsed as markup (a "[/]" would crash the frame, a
    "[@click=...]" would be a button) and stripped of terminal control sequences (Rich
    passes ESC through: an agent's or reviewer's text could retitle the terminal or write
    its clipboard)."""
    return Text(strip_ansi(text), style=style)


def age(since: datetime, now: datetime) -> str:
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}"
    return f"{seconds // 86400}d"


def _status_colour(status: TaskStatus, theme: Theme) -> str:
    # theme colours, so the table follows Textual's light/dark switch
    if status in (S.READY, S.MERGED, S.PR_CREATED):
        return theme.success or "green"
    if status in (S.FAILED, S.REJECTED, S.ABANDONED):
        return theme.error or "red"
    if status in (S.RETRYING, S.SPAWNING, S.PROPOSED, S.REVIEWING):
        return theme.warning or "yellow"
    if status == S.RUNNING:
        return theme.accent or theme.primary
    return theme.foreground or "grey50"


NEEDS_INPUT = "needs input"  # the status cell of a running agent waiting for a person


def waiting(task: TaskRecord) -> bool:
    """The agent waits for a person (the monitor flags its output; a flag, not a status)."""
    return task.needs_input and task.status == S.RUNNING


def status_cell(status: TaskStatus, theme: Theme, needs_input: bool = False) -> Text:
    if needs_input:  # words, not only a colour: readable on any terminal
        return Text(NEEDS_INPUT, style=f"bold reverse {theme.warning or 'yellow'}")
    return Text(str(status), style=f"bold {_status_colour(status, theme)}")


def agent_cell(task: TaskRecord) -> str:
    return f"{task.agent or '-'}/{task.model}" if task.model else (task.agent or "-")


def attempts_cell(task: TaskRecord) -> str:
    return f"{task.attempt}/{task.max_attempts}"


def review_cell(task: TaskRecord) -> str:
    if task.review_status:
        return task.review_status
    if task.review_verdicts:
        return f"{len(task.review_verdicts)} verdicts"
    return "-"


def short(text: str, width: int) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def short_path(path: str, width: int, home: str = "") -> str:
    """path in at most width characters on one line: the home directory as ~, then the
    middle left out ("~/…/logs/control-room.log"): the file and its nearest directories
    say what it is, the start says whose."""
    if home and (path == home or path.startswith(home.rstrip("/") + "/")):
        path = "~" + path[len(home.rstrip("/")):]
    if len(path) <= width:
        return path
    head = "~/…/" if path.startswith("~/") else "…/"
    parts = path.split("/")
    tail = parts.pop()
    while parts and len(head) + len(parts[-1]) + 1 + len(tail) <= width:
        tail = f"{parts.pop()}/{tail}"
    shown = head + tail
    return shown if len(shown) <= width else "…" + shown[len(shown) - width + 1:]


@dataclass(frozen=True)
class Column:
    """A table column: the least width it takes (its text then ends in "…") and when it
    goes on a narrow terminal (1 first; 0 never)."""

    key: str
    label: str
    least: int
    drop: int = 0


COLUMNS: tuple[Column, ...] = (
    Column("id", "ID", 12), Column("status", "STATUS", len(NEEDS_INPUT)), Column("agent", "AGENT/MODEL", 11, 7),
    Column("age", "AGE", 5, 4), Column("attempts", "TRY", 5, 3), Column("ci", "CI", 7, 5),
    Column("review", "REVIEW", 8, 6), Column("description", "DESCRIPTION", 16),
    Column("branch", "BRANCH", 12, 2), Column("operator", "OPERATOR", 8, 1),
)
# the room left goes to these columns in turn, each up to a width; the description takes the rest
GROWTH = (("agent", 16), ("description", 28), ("agent", 20), ("review", 11), ("description", 48), ("branch", 18),
          ("operator", 10))


def column_widths(room: int, padding: int = 1) -> dict[str, int]:
    """Which columns fit in `room` cells and how wide each is, in table order: never wider
    than the room (no horizontal scrolling) while any column can still give way. Columns
    go (lowest drop first) once every one is at its least; what is left is shared out by
    GROWTH."""
    shown = list(COLUMNS)
    widths = {c.key: c.least for c in shown}

    def used() -> int:
        return sum(widths[c.key] + 2 * padding for c in shown)

    for column in sorted((c for c in COLUMNS if c.drop), key=lambda c: c.drop):
        if used() <= room:
            break
        shown.remove(column)
        del widths[column.key]
    for key, up_to in GROWTH:
        if key in widths:
            widths[key] += max(0, min(up_to - widths[key], room - used()))
    widths["description"] += max(0, room - used())
    return {c.key: widths[c.key] for c in shown}


def row_cells(task: TaskRecord, now: datetime, theme: Theme) -> dict[str, Text]:
    """Every column's cell; the table shows those that fit, cut with "…" to their width."""
    cells = {
        "id": Text(task.id),
        "status": status_cell(task.status, theme, waiting(task)),
        "agent": plain(agent_cell(task)),
        "age": Text(age(task.created_at, now)),
        "attempts": Text(attempts_cell(task)),
        "ci": Text(str(task.ci_status) if task.ci_status else "-"),
        "review": plain(review_cell(task)),
        "description": Text(short(strip_ansi(task.description), DESCRIPTION_MAX)),
        "branch": plain(task.branch or "-"),
        "operator": Text(task.operator_id),
    }
    for cell in cells.values():
        cell.no_wrap, cell.overflow = True, "ellipsis"
    return cells


def add_plain_row(table: Table, *cells: str | Text) -> None:
    """Rich parses a str cell as markup: task and review text must show as written."""
    table.add_row(*(plain(cell) if isinstance(cell, str) else cell for cell in cells))


def matches(task: TaskRecord, needle: str) -> bool:
    """Filter: every word must appear in id, status (or "needs input"), agent, branch,
    operator or description."""
    if not needle.strip():
        return True
    hay = " ".join([task.id, task.status, NEEDS_INPUT if waiting(task) else "", task.agent or "", task.model or "", task.branch or "",
                    task.operator_id, task.description]).lower()
    return all(word in hay for word in needle.lower().split())
