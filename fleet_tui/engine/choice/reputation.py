"""Reputation of an (agent, model) pair for a task type, from the registry's own history.

Success means the task reached ready or merged; the posterior over the success rate is
Beta(successes + 1, failures + 1) (a uniform prior). Pure functions: the counts come from
the store, the random source from the caller (seeded in tests).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any
from collections.abc import Sequence

# z for a two-sided 90% interval; confidence = 1 - width of that interval (normal approx.)
_Z90 = 1.6449


@dataclass(frozen=True)
class Reputation:
    score: float  # posterior mean of the success rate
    confidence: float | None  # None when there is no history at all
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "confidence": self.confidence, "n": self.n}


@dataclass(frozen=True)
class CandidateStats:
    """Outcome counts of one (agent, model) pair for one task type."""

    agent: str
    model: str
    successes: int = 0
    failures: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.agent, self.model)

    @property
    def n(self) -> int:
        return self.successes + self.failures


def beta_params(successes: int, failures: int) -> tuple[int, int]:
    if successes < 0 or failures < 0:
        raise ValueError("outcome counts must be >= 0")
    return successes + 1, failures + 1


def reputation(successes: int, failures: int) -> Reputation:
    """{score, confidence, n}. confidence is 1 minus the width of the 90% credible interval
    (normal approximation of the Beta posterior, clipped to [0, 1]): it grows with n and is
    None for n == 0, because a prior alone says nothing about this pair."""
    a, b = beta_params(successes, failures)
    n = successes + failures
    score = a / (a + b)
    if n == 0:
        return Reputation(score=round(score, 4), confidence=None, n=0)
    std = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    confidence = min(1.0, max(0.0, 1.0 - 2 * _Z90 * std))
    return Reputation(score=round(score, 4), confidence=round(confidence, 4), n=n)


def thompson_sample(
    candidates: Sequence[CandidateStats], rng: random.Random
) -> tuple[CandidateStats | None, dict[tuple[str, str], float]]:
    """Draw one success rate per candidate from its posterior; the highest draw wins.
    Ties go to the earlier candidate (callers list them in preference order)."""
    samples: dict[tuple[str, str], float] = {}
    winner: CandidateStats | None = None
    best = -1.0
    for cand in candidates:
        a, b = beta_params(cand.successes, cand.failures)
        draw = rng.betavariate(a, b)
        samples[cand.key] = draw
        if draw > best:
            best, winner = draw, cand
    return winner, samples


def reputation_note(cand: CandidateStats, task_type: str) -> str:
    """One line for the prompt's RELEVANT tier, so the agent knows how this pairing fares."""
    rep = reputation(cand.successes, cand.failures)
    if rep.n == 0:
        return f"{cand.agent}/{cand.model} has no history on {task_type} tasks in this fleet."
    return (
        f"{cand.agent}/{cand.model} on {task_type} tasks: {cand.successes} of {rep.n} reached "
        f"ready or merged (score {rep.score:.2f}, confidence {rep.confidence:.2f})."
    )
