"""Reputation {score, confidence, n} and Thompson sampling over Beta posteriors."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet_tui.engine.choice.reputation import (
    CandidateStats,
    reputation,
    reputation_note,
    thompson_sample,
)


def test_no_history_gives_null_confidence() -> None:
    assert reputation(0, 0).to_dict() == {"score": 0.5, "confidence": None, "n": 0}


def test_score_is_posterior_mean() -> None:
    rep = reputation(8, 2)
    assert rep.score == pytest.approx(9 / 12, abs=1e-4)
    assert rep.n == 10
    assert 0.0 <= rep.confidence <= 1.0


def test_confidence_grows_with_history() -> None:
    small = reputation(3, 1).confidence
    large = reputation(300, 100).confidence
    assert small is not None and large is not None
    assert large > small
    assert reputation(300, 100).score == pytest.approx(301 / 402, abs=1e-4)


def test_negative_counts_rejected() -> None:
    with pytest.raises(ValueError):
        reputation(-1, 0)


@given(st.integers(0, 10_000), st.integers(0, 10_000))
def test_reputation_bounds(successes: int, failures: int) -> None:
    rep = reputation(successes, failures)
    assert 0.0 < rep.score < 1.0
    assert rep.n == successes + failures
    assert (rep.confidence is None) == (rep.n == 0)
    if rep.confidence is not None:
        assert 0.0 <= rep.confidence <= 1.0


def test_thompson_sample_returns_every_draw_and_max_wins() -> None:
    cands = [CandidateStats("a", "m1", 5, 5), CandidateStats("b", "m2", 1, 9)]
    winner, samples = thompson_sample(cands, random.Random(7))
    assert set(samples) == {("a", "m1"), ("b", "m2")}
    assert winner is not None
    assert samples[winner.key] == max(samples.values())


def test_thompson_sample_empty() -> None:
    assert thompson_sample([], random.Random(1)) == (None, {})


def test_thompson_is_reproducible_with_seed() -> None:
    cands = [CandidateStats("a", "m1", 3, 3), CandidateStats("b", "m2", 3, 3)]
    first = thompson_sample(cands, random.Random(42))
    second = thompson_sample(cands, random.Random(42))
    assert first == second


def test_reputation_note_mentions_counts() -> None:
    note = reputation_note(CandidateStats("claude", "opus", 4, 1), "bug_fix")
    assert "4 of 5" in note and "bug_fix" in note
    assert "no history" in reputation_note(CandidateStats("x", "y"), "docs")
