"""Reviewers of a change: a deterministic built-in check and HTTP model-API reviewers.
All of them produce a Verdict; aggregate() folds several into one outcome."""

from __future__ import annotations

from fleet_tui.engine.reviewers.builtin import BuiltinReviewer
from fleet_tui.engine.reviewers.verdict import (
    ReviewOutcome,
    Verdict,
    aggregate,
    parse_verdict_text,
)

__all__ = ["BuiltinReviewer", "ReviewOutcome", "Verdict", "aggregate", "parse_verdict_text"]
