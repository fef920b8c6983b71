"""Breaker state machine, driven by an injected clock (no sleeping)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fleet_tui.engine.kit.breaker import BreakerRegistry, BreakerState, CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make() -> tuple[CircuitBreaker, FakeClock]:
    clock = FakeClock()
    return CircuitBreaker("model:x", clock=clock), clock


def test_five_failures_within_window_open_it() -> None:
    breaker, clock = make()
    for _ in range(4):
        breaker.record_failure()
        clock.advance(10)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()


def test_failures_spread_beyond_window_do_not_open() -> None:
    breaker, clock = make()
    for _ in range(10):
        breaker.record_failure()
        clock.advance(16)  # at most 4 failures in any 60 s window
    assert breaker.state is BreakerState.CLOSED


def test_open_turns_half_open_after_30s_and_admits_one_probe() -> None:
    breaker, clock = make()
    for _ in range(5):
        breaker.record_failure()
    clock.advance(29.9)
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_in() > 0
    clock.advance(0.1)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.would_allow()
    assert breaker.allow()
    assert not breaker.allow()  # second caller waits for the probe
    assert not breaker.would_allow()


def test_probe_success_closes_and_failure_reopens() -> None:
    breaker, clock = make()
    for _ in range(5):
        breaker.record_failure()
    clock.advance(30)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.times_opened == 2
    clock.advance(30)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    # a fresh start: four failures do not reopen it
    for _ in range(4):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_snapshot_shows_state_for_display() -> None:
    breaker, clock = make()
    breaker.record_failure()
    snap = breaker.snapshot()
    assert snap == {
        "name": "model:x",
        "state": "closed",
        "recent_failures": 1,
        "failure_threshold": 5,
        "retry_in_s": 0.0,
        "times_opened": 0,
    }
    for _ in range(4):
        breaker.record_failure()
    clock.advance(10)
    snap = breaker.snapshot()
    assert snap["state"] == "open"
    assert snap["retry_in_s"] == 20.0


def test_registry_creates_on_demand_and_lists_open() -> None:
    clock = FakeClock()
    registry = BreakerRegistry(clock=clock)
    assert registry.peek("a") is None
    a = registry.get("a")
    assert registry.get("a") is a
    registry.get("b")
    for _ in range(5):
        a.record_failure()
    assert registry.open_names() == ["a"]
    assert [s["name"] for s in registry.snapshot()] == ["a", "b"]
    clock.advance(30)
    assert registry.open_names() == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["ok", "fail", "allow"]), st.floats(0, 40)), max_size=60))
def test_never_allows_while_open(events: list[tuple[str, float]]) -> None:
    breaker, clock = make()
    for kind, gap in events:
        clock.advance(gap)
        if kind == "ok":
            breaker.record_success()
        elif kind == "fail":
            breaker.record_failure()
        else:
            was_open = breaker.state is BreakerState.OPEN
            allowed = breaker.allow()
            assert not (was_open and allowed)
        assert breaker.state in set(BreakerState)
