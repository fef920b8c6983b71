"""ControlRoom: what the screens use of the app they run in (FleetApp), typed without
importing it: the app imports the screens, so a screen that imported the app (even only for
type checking) would close a circle. FleetApp satisfies it (tests/unit/fleet_face_typing.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, cast

from textual.app import App
from textual.message_pump import MessagePump

from fleet_tui.domain.models import Operator, TaskRecord

if TYPE_CHECKING:  # the engine is imported after the first frame (app.import_engine_here)
    from fleet_tui.engine.ports import FleetFace


class ControlRoom(Protocol):
    @property
    def operator(self) -> Operator: ...

    @property
    def default_repo(self) -> str: ...

    @property
    def banner(self) -> str: ...

    @property
    def now(self) -> Callable[[], datetime]: ...

    @property
    def screen_ready(self) -> asyncio.Event:
        """Set by the main screen once its widgets are there."""

    @property
    def fleet(self) -> FleetFace:
        """The fleet, once the engine is open."""

    async def read_tasks(self) -> list[TaskRecord]: ...

    def governor_limit(self) -> int: ...

    def fleet_capacity(self) -> int: ...

    def follow_logs(self, task_id: str, target: MessagePump, *, group: str = "logs",
                    tail: int | None = None) -> None:
        """Post the task's output to target as LogLines, one follower per group."""

    def stop_following(self, group: str = "logs") -> None: ...

    def task_verb(self, verb: str, task: TaskRecord) -> None:
        """stop, retry, delete or merge on task, after a yes where the verb asks first."""

    async def attach(self, task: TaskRecord) -> None: ...

    def show_help(self) -> None: ...

    def toggle_theme(self) -> None: ...


def control_room(app: App[object]) -> ControlRoom:
    """The running app as the control room: the screens run in no other app."""
    return cast(ControlRoom, app)
