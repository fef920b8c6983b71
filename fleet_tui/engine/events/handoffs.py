"""Handoffs: do a step's output meet a handoff's conditions, what context the follow-up
gets, and how deep a chain of handoffs can go."""

from __future__ import annotations

import math
from typing import Any
from collections.abc import Iterable, Mapping

from fleet_tui.engine.events.policy import Conditions, Handoff

_MISSING = object()


def lookup(data: Mapping[str, Any], path: str) -> Any:
    """data['a']['b'] for 'a.b'; _MISSING when any part is absent."""
    current: Any = data
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = current[part]
    return current


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


def conditions_hold(conditions: Conditions, output: Mapping[str, Any]) -> bool:
    """Every condition given holds on the output (no conditions: always)."""
    if conditions.min_confidence is not None:
        confidence = _number(output.get("confidence"))
        if confidence is None or confidence < conditions.min_confidence:
            return False
    if conditions.risk_score_above is not None:
        risk = _number(output.get("risk_score"))
        if risk is None or risk <= conditions.risk_score_above:
            return False
    if conditions.intent is not None and output.get("intent") != conditions.intent:
        return False
    if conditions.classification is not None and output.get("classification") != conditions.classification:
        return False
    if conditions.has_key is not None and lookup(output, conditions.has_key) is _MISSING:
        return False
    return True


def map_context(handoff: Handoff, context: Mapping[str, Any], output: Mapping[str, Any]) -> dict[str, Any]:
    """The follow-up's context: each target key from 'output.<path>' (the step's output) or
    '<path>' (the current context). Paths that resolve to nothing are left out."""
    mapped: dict[str, Any] = {}
    for target, source in handoff.context_map.items():
        if source.startswith("output."):
            value = lookup(output, source.removeprefix("output."))
        else:
            value = lookup(context, source)
        if value is not _MISSING:
            mapped[target] = value
    return mapped


def longest_chain(handoffs: Iterable[Handoff], start: str | None = None) -> tuple[int, list[str]]:
    """The deepest chain of sequences that handoffs can form (1 = no follow-up), and that
    chain. A cycle is unbounded: returned as depth math.inf with the cycle's path."""
    edges: dict[str, set[str]] = {}
    for h in handoffs:
        if h.enabled:
            edges.setdefault(h.source_sequence, set()).add(h.target_sequence)
    best: tuple[float, list[str]] = (0, [])

    def walk(node: str, path: list[str]) -> tuple[float, list[str]]:
        if node in path:
            return math.inf, path + [node]
        deepest: tuple[float, list[str]] = (len(path) + 1, path + [node])
        for nxt in sorted(edges.get(node, ())):
            found = walk(nxt, path + [node])
            if found[0] > deepest[0]:
                deepest = found
            if deepest[0] == math.inf:
                break
        return deepest

    for node in ([start] if start else sorted(edges)):
        found = walk(node, [])
        if found[0] > best[0]:
            best = found
    return best  # type: ignore[return-value]
