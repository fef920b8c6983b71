"""The spawn form: every field validated by SpawnRequest (pydantic) and by the engine's
checks against the fleet (repository, base branch, agent and model) before the spawn, all
errors at once, each next to its field; the spawn's own refusals (denials) land in the
admission line."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from fleet_tui.domain.errors import FleetError, ValidationFailed
from fleet_tui.domain.models import SpawnRequest, SpawnResult, TaskType
from fleet_tui.ui.format import plain
from fleet_tui.ui.notices import admission_line
from fleet_tui.ui.room import control_room

FIELDS = ("description", "repo", "base_branch", "task_type", "agent", "model", "priority")
LABELS = {
    "description": "Description (enter: a new line; ctrl+s: spawn)", "repo": "Repository", "base_branch": "Base branch (empty: HEAD's)",
    "task_type": "Task type", "agent": "Agent (empty: routed)", "model": "Model (empty: agent default)",
    "priority": "Priority (0-100)",
}


def field_errors(exc: ValidationError) -> dict[str, str]:
    """pydantic's errors keyed by form field, worded as rules."""
    errors: dict[str, str] = {}
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "description"
        message = err["msg"].removeprefix("Value error, ")
        errors.setdefault(name if name in FIELDS else "description", message)
    return errors


class SpawnScreen(ModalScreen[SpawnResult | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="spawn.cancel"),
        Binding("ctrl+s", "submit", "Submit", id="spawn.submit"),
    ]

    def __init__(self, default_repo: str) -> None:
        super().__init__(classes="dialog-screen")
        self.default_repo = default_repo
        self.submitting = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="spawn-form"):
            yield Static("[b]New task[/b]", id="form-title")
            for name in FIELDS:
                yield Label(LABELS[name], classes="field-label")
                if name == "description":  # several lines: the task, then e.g. FLEET-DEMO: lines
                    yield TextArea(id="description", soft_wrap=True, tab_behavior="focus",
                                   placeholder="What should the agent do?")
                elif name == "task_type":
                    yield Select([(t.value, t.value) for t in TaskType], value=TaskType.FEATURE.value,
                                 allow_blank=False, id="task_type")
                else:
                    value = self.default_repo if name == "repo" else ("50" if name == "priority" else "")
                    yield Input(value=value, id=name, placeholder=LABELS[name])
                yield Static("", id=f"{name}-error", classes="field-error")
            yield Static("", id="admission")
            with Horizontal(classes="buttons"):
                yield Button("Spawn (ctrl+s)", variant="primary", id="submit")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#description", TextArea).focus()

    # --- reading the form ------------------------------------------------------------

    def values(self) -> dict[str, Any]:
        raw: dict[str, Any] = {}
        for name in FIELDS:
            if name == "task_type":
                raw[name] = self.query_one("#task_type", Select).value
            elif name == "description":
                raw[name] = self.query_one("#description", TextArea).text.strip()
            else:
                text = self.query_one(f"#{name}", Input).value.strip()
                if text or name in ("description", "repo"):
                    raw[name] = text
        return raw

    def show_errors(self, errors: dict[str, str]) -> None:
        for name in FIELDS:
            box = self.query_one(f"#{name}-error", Static)
            message = errors.get(name, "")
            box.update(plain(f"{name}: {message}" if message else ""))
            box.set_class(bool(message), "shown")
            self.query_one(f"#{name}").set_class(bool(message), "-invalid-field")

    def show_admission(self, text: str, kind: str) -> None:
        line = self.query_one("#admission", Static)
        line.update(plain(text))
        line.set_classes(f"admission-{kind}")

    # --- submitting --------------------------------------------------------------------

    @on(Button.Pressed, "#submit")
    @on(Input.Submitted)
    def action_submit(self) -> None:
        if self.submitting:
            return
        values = self.values()
        errors: dict[str, str] = {}
        try:
            request = SpawnRequest(**values)
        except ValidationError as exc:
            errors = field_errors(exc)
            # the fields the model took, for the engine's checks of those (repository, agent…)
            request = SpawnRequest.model_construct(**{"repo": "", **{k: v for k, v in values.items()
                                                                     if k not in errors}})
        self.submitting = True
        self.show_admission("checking…", "pending")
        self.run_worker(self._check_and_spawn(request, errors), group="spawn", exclusive=True)

    async def _check_and_spawn(self, request: SpawnRequest, errors: dict[str, str]) -> None:
        """Every field's error at once, the form's own and the engine's; the spawn only when
        there are none."""
        app = control_room(self.app)
        try:  # an observer's fleet answers none: the conductor taking the spawn checks it
            for name, rule in (await app.fleet.spawn_field_errors(request)).items():
                errors.setdefault(name if name in FIELDS else "description", rule)
        except FleetError as exc:
            self.submitting = False
            self.show_admission(admission_line(exc), "denied")
            return
        self.show_errors(errors)
        if errors:
            self.submitting = False
            self.show_admission("not submitted: fix the fields marked above", "invalid")
            return
        self.show_admission("submitting…", "pending")
        await self._spawn(request)

    async def _spawn(self, request: SpawnRequest) -> None:
        app = control_room(self.app)
        try:
            result = await app.fleet.spawn(app.operator, request)
        except ValidationFailed as exc:
            self.show_errors({exc.field if exc.field in FIELDS else "description": exc.rule})
            self.show_admission("not submitted: fix the fields marked above", "invalid")
        except FleetError as exc:
            self.show_admission(admission_line(exc), "denied")
        else:
            self.dismiss(result)
        finally:
            self.submitting = False

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
