"""Handoff conditions each true and false, context mapping, chain depth, and the backoff
schedules (pure functions, no I/O)."""

from __future__ import annotations

import math

import pytest

from fleet_tui.domain.errors import ValidationFailed
from fleet_tui.engine.events.handoffs import conditions_hold, longest_chain, map_context
from fleet_tui.engine.events.policy import Conditions, Handoff, Sequence, dead_letter_delay_s, parse, step_retry_delay_s

OUTPUT = {"confidence": 0.8, "risk_score": 7, "intent": "fix", "classification": "bug",
          "details": {"files": ["a.py"]}}


@pytest.mark.parametrize("conditions,holds", [
    ({"min_confidence": 0.8}, True), ({"min_confidence": 0.81}, False),
    ({"risk_score_above": 6.9}, True), ({"risk_score_above": 7}, False),
    ({"intent": "fix"}, True), ({"intent": "feature"}, False),
    ({"classification": "bug"}, True), ({"classification": "docs"}, False),
    ({"has_key": "details.files"}, True), ({"has_key": "details.owner"}, False),
    ({}, True), ({"intent": "fix", "classification": "docs"}, False),
])
def test_each_condition_true_and_false(conditions: dict, holds: bool) -> None:
    assert conditions_hold(Conditions(**conditions), OUTPUT) is holds


def test_missing_or_non_numeric_values_never_hold() -> None:
    assert not conditions_hold(Conditions(min_confidence=0.1), {"confidence": "high"})
    assert not conditions_hold(Conditions(risk_score_above=0), {})
    assert not conditions_hold(Conditions(min_confidence=0.1), {"confidence": True})


def test_context_map_reads_output_and_context_and_drops_missing() -> None:
    h = Handoff(name="h", source_sequence="a", source_step="s", target_sequence="b",
                context_map={"files": "output.details.files", "task_id": "task_id", "gone": "output.nope"})
    assert map_context(h, {"task_id": "t1"}, OUTPUT) == {"files": ["a.py"], "task_id": "t1"}


def test_longest_chain_and_cycles() -> None:
    def h(a: str, b: str) -> Handoff:
        return Handoff(name=f"{a}{b}", source_sequence=a, source_step="s", target_sequence=b)

    assert longest_chain([h("a", "b"), h("b", "c")]) == (3, ["a", "b", "c"])
    depth, path = longest_chain([h("a", "b"), h("b", "a")])
    assert depth == math.inf and path == ["a", "b", "a"]
    assert longest_chain([]) == (0, [])


def test_malformed_input_names_the_field_and_the_rule() -> None:
    with pytest.raises(ValidationFailed) as err:
        parse(Conditions, {"min_confidence": 2}, field="conditions")
    assert err.value.field == "conditions.min_confidence" and "must be at most 1" in err.value.rule
    with pytest.raises(ValidationFailed) as dup:
        parse(Sequence, {"name": "s", "steps": [{"name": "x", "adapter": "notify"}] * 2}, field="sequence")
    assert dup.value.field == "sequence.steps" and "unique" in dup.value.rule


def test_dead_letter_backoff_is_1_min_times_4_to_the_n_capped_at_1_hour() -> None:
    assert [dead_letter_delay_s(n) for n in range(6)] == [60, 240, 960, 3600, 3600, 3600]


def test_step_retry_delays_are_1_2_4_seconds() -> None:
    assert [step_retry_delay_s(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
