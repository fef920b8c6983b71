"""Retry maths: the backoff schedule and the retry budget, pure functions."""

from __future__ import annotations

import random


def backoff_delay(
    attempt: int,
    *,
    base_s: float = 30.0,
    cap_s: float = 120.0,
    jitter_s: float = 1.0,
    over_capacity: bool = False,
    rng: random.Random | None = None,
) -> float:
    """min(base * 2^attempt + jitter, cap), doubled (still capped at 2*cap) over capacity."""
    rng = rng or random.Random()
    exponent = min(max(attempt, 0), 32)  # keep 2**n finite for absurd attempts
    delay = min(base_s * (2.0**exponent) + rng.uniform(0.0, jitter_s), cap_s)
    return delay * 2 if over_capacity else delay


def may_retry(retry_count: int, max_retries: int) -> bool:
    return retry_count < max_retries
