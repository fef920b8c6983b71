"""Modal questions: confirm a destructive verb, and what quitting does to the agents."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from fleet_tui.ui.format import plain

# the task verbs that ask first, wherever their key is pressed (main screen, detail screen)
QUESTIONS = {
    "stop": "Stop task {id} ({status})? Its agent is killed and the task cancelled.",
    "delete": "Delete task {id} ({status})? Its worktree and branch go too.",
    "merge": "Merge task {id} into {base}?",
}


class ConfirmScreen(ModalScreen[bool]):
    AUTO_FOCUS = "#no"
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str, yes: str = "Yes") -> None:
        super().__init__(classes="dialog-screen")
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(plain(self.question), id="question")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


KEEP = "keep"
STOP_ALL = "stop"


def agents_running(count: int) -> str:
    if count == 0:
        return "None of your agents is running."
    return f"{count} of your agents {'is' if count == 1 else 'are'} running or starting."


class QuitScreen(ModalScreen[str | None]):
    """Quitting leaves agents running by default: they outlive the control room."""

    AUTO_FOCUS = f"#{KEEP}"

    BINDINGS = [
        Binding("enter,k", "choose('keep')", "Quit, agents keep running", id="quit.keep"),
        Binding("x", "choose('stop')", "Stop my agents and quit", id="quit.stop"),
        Binding("escape", "choose(None)", "Cancel", id="quit.cancel"),
    ]

    def __init__(self, agents: int) -> None:
        super().__init__(classes="dialog-screen")
        self.agents = agents

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            if self.agents:
                yield Static(
                    f"Quit the control room? {agents_running(self.agents)}\n"
                    "By default they keep running and the next control room picks them up.\n"
                    "Changes waiting for CI, review or a merge are kept either way.",
                    id="question")
            else:  # nothing to keep or stop: no choice to offer about agents
                yield Static(f"Quit the control room? {agents_running(0)}\n"
                             "Changes waiting for CI, review or a merge are kept.", id="question")
            with Horizontal(classes="buttons"):
                if self.agents:
                    yield Button("Quit, keep agents (enter)", variant="primary", id=KEEP)
                    yield Button("Stop agents and quit (x)", variant="error", id=STOP_ALL)
                else:
                    yield Button("Quit (enter)", variant="primary", id=KEEP)
                yield Button("Cancel (esc)", id="cancel")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # x stops agents: with none running it is not offered, so it does nothing either
        return not (action == "choose" and parameters == (STOP_ALL,) and not self.agents)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id if event.button.id in (KEEP, STOP_ALL) else None)

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)
