"""The event router: events -> routes -> sequences of steps in waves -> handoffs (section 9)."""

from fleet_tui.engine.router.model import Handoff, Policy, Route, Sequence, Step
from fleet_tui.engine.router.runner import Router, RunResult, StepOutcome

__all__ = ["Handoff", "Policy", "Route", "Router", "RunResult", "Sequence", "Step", "StepOutcome"]
