"""Whole-policy checks run before an override is written: every step names a known
adapter, every reference resolves, and no handoff chain goes deeper than the cap."""

from __future__ import annotations

import math
from collections.abc import Collection

from fleet_tui.domain.errors import ValidationFailed
from fleet_tui.engine.events.handoffs import longest_chain
from fleet_tui.engine.events.policy import MAX_CHAIN_DEPTH, Policy


def check_policy(policy: Policy, adapters: Collection[str], *, max_depth: int = MAX_CHAIN_DEPTH) -> None:
    names = {s.name for s in policy.sequences}
    for sequence in policy.sequences:
        for i, step in enumerate(sequence.steps):
            if step.adapter not in adapters:
                raise ValidationFailed(
                    f"steps.{i}.adapter",
                    f"unknown adapter {step.adapter!r} in sequence {sequence.name}; "
                    f"known: {', '.join(sorted(adapters))}")
    for route in policy.routes:
        if route.sequence_name not in names:
            raise ValidationFailed("sequence_name", f"route {route.event_type} names unknown sequence "
                                                    f"{route.sequence_name!r}")
    for handoff in policy.handoffs:
        source = policy.sequence(handoff.source_sequence)
        if source is None:
            raise ValidationFailed("source_sequence", f"handoff {handoff.name} names unknown sequence "
                                                      f"{handoff.source_sequence!r}")
        if source.step(handoff.source_step) is None:
            raise ValidationFailed("source_step", f"handoff {handoff.name}: sequence {source.name} has no "
                                                  f"step {handoff.source_step!r}")
        if handoff.target_sequence not in names:
            raise ValidationFailed("target_sequence", f"handoff {handoff.name} names unknown sequence "
                                                      f"{handoff.target_sequence!r}")
    depth, chain = longest_chain(policy.handoffs)
    if depth > max_depth:
        shape = "forms a cycle" if depth == math.inf else f"chains {int(depth)} sequences"
        raise ValidationFailed("handoffs", f"{' -> '.join(chain)} {shape}; chains are capped at depth {max_depth}")
