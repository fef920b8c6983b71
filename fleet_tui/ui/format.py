"""How records look in cells: pure functions, the clock injected so screenshots are stable."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from rich.table import Table
from rich.text import Text
from textual.theme import Theme

from fleet_tui.domain.models import TaskRecord
from fleet_tui.domain.status import TaskStatus
from fleet_tui.domain.text import strip_ansi

Clock = Callable[[], datetime]
S = TaskStatus


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


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


def status_cell(status: TaskStatus, theme: Theme) -> Text:
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


COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "ID"), ("status", "STATUS"), ("agent", "AGENT/MODEL"), ("age", "AGE"),
    ("attempts", "TRY"), ("ci", "CI"), ("review", "REVIEW"), ("description", "DESCRIPTION"),
    ("branch", "BRANCH"), ("operator", "OPERATOR"),
)


def row_cells(task: TaskRecord, now: datetime, theme: Theme) -> dict[str, Text]:
    return {
        "id": Text(task.id),
        "status": status_cell(task.status, theme),
        "agent": plain(agent_cell(task)),
        "age": Text(age(task.created_at, now)),
        "attempts": Text(attempts_cell(task)),
        "ci": Text(str(task.ci_status) if task.ci_status else "-"),
        "review": plain(review_cell(task)),
        "description": Text(short(strip_ansi(task.description), 40)),  # cut what a person sees
        "branch": plain(task.branch or "-"),
        "operator": Text(task.operator_id),
    }


def add_plain_row(table: Table, *cells: str | Text) -> None:
    """Rich parses a str cell as markup: task and review text must show as written."""
    table.add_row(*(plain(cell) if isinstance(cell, str) else cell for cell in cells))


def matches(task: TaskRecord, needle: str) -> bool:
    """Filter: every word must appear in id, status, agent, branch, operator or description."""
    if not needle.strip():
        return True
    hay = " ".join([task.id, task.status, task.agent or "", task.model or "", task.branch or "",
                    task.operator_id, task.description]).lower()
    return all(word in hay for word in needle.lower().split())
