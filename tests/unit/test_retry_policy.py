"""Backoff and retry budget, as properties."""

from __future__ import annotations

import random
from datetime import datetime, UTC

from hypothesis import given
from hypothesis import strategies as st

from fleet_tui.config import RetrySettings
from fleet_tui.domain.models import TaskRecord
from fleet_tui.domain.retry import backoff_delay, may_retry
from fleet_tui.engine.attempts.retry import RetryPolicy

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def task(retry_count: int, max_retries: int) -> TaskRecord:
    return TaskRecord(id="abcdef123456", operator_id="op", status="failed", version=1, description="d",
                      repo="/r", base_branch="main", retry_count=retry_count, max_retries=max_retries,
                      created_at=NOW, updated_at=NOW)


@given(attempt=st.integers(min_value=-5, max_value=10_000), seed=st.integers(), over=st.booleans())
def test_backoff_never_exceeds_its_cap(attempt: int, seed: int, over: bool) -> None:
    delay = backoff_delay(attempt, rng=random.Random(seed), over_capacity=over)
    cap = 120.0 * (2 if over else 1)
    assert 0 <= delay <= cap


@given(attempt=st.integers(min_value=0, max_value=1), seed=st.integers())
def test_early_attempts_follow_the_exponential_with_jitter(attempt: int, seed: int) -> None:
    delay = backoff_delay(attempt, rng=random.Random(seed))
    assert 30 * 2**attempt <= delay <= 30 * 2**attempt + 1


@given(max_retries=st.integers(min_value=0, max_value=10), failures=st.integers(min_value=0, max_value=30))
def test_the_budget_is_never_exceeded(max_retries: int, failures: int) -> None:
    policy = RetryPolicy(RetrySettings(max_retries=max_retries), rng=random.Random(0))
    count = 0
    for _ in range(failures):
        decision = policy.decide(task(count, max_retries), fleet_load=0.5)
        if not decision.retry:
            break
        count += 1
    assert count <= max_retries
    assert count == min(failures, max_retries)
    assert may_retry(count, max_retries) == (count < max_retries)


def test_delay_doubles_over_the_capacity_threshold() -> None:
    calm = RetryPolicy(RetrySettings(), rng=random.Random(7)).decide(task(0, 3), fleet_load=0.5)
    busy = RetryPolicy(RetrySettings(), rng=random.Random(7)).decide(task(0, 3), fleet_load=0.9)
    assert busy.delay_s == 2 * calm.delay_s
    assert "over capacity" in busy.reason
