"""The router's policy as data: steps in waves, sequences, event routes, handoff routes and
their conditions. Parsing turns pydantic's errors into ValidationFailed naming the field."""

from __future__ import annotations

from typing import Any, Literal
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fleet_tui.domain.validation import M, validated

MAX_CHAIN_DEPTH = 5
MAX_STEP_RETRIES = 2
RETRY_DELAYS_S: tuple[float, ...] = (1.0, 2.0, 4.0)
NAME_PATTERN = r"^[a-z0-9_.-]{1,64}$"
EVENT_PATTERN = r"^[a-z0-9_.:-]{1,64}$"

Criticality = Literal["critical", "best_effort"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Step(_Frozen):
    name: str = Field(pattern=NAME_PATTERN)
    adapter: str = Field(pattern=NAME_PATTERN)
    wave: int = Field(default=0, ge=0, le=15)
    criticality: Criticality = "critical"
    retries: int = Field(default=MAX_STEP_RETRIES, ge=0, le=MAX_STEP_RETRIES)
    params: dict[str, Any] = Field(default_factory=dict)


class Sequence(_Frozen):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(default="", max_length=500)
    steps: list[Step] = Field(min_length=1, max_length=32)
    operator_id: str | None = None

    @field_validator("steps")
    @classmethod
    def _unique_step_names(cls, steps: list[Step]) -> list[Step]:
        names = [s.name for s in steps]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"step names must be unique within a sequence; repeated: {', '.join(duplicates)}")
        return steps

    def waves(self) -> list[list[Step]]:
        """Steps grouped by wave, in wave order (steps keep their listed order)."""
        numbers = sorted({s.wave for s in self.steps})
        return [[s for s in self.steps if s.wave == n] for n in numbers]

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)


class Route(_Frozen):
    event_type: str = Field(pattern=EVENT_PATTERN)
    sequence_name: str = Field(pattern=NAME_PATTERN)
    match: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    operator_id: str | None = None

    def matches(self, context: Mapping[str, Any]) -> bool:
        return all(context.get(key) == value for key, value in self.match.items())


class Conditions(_Frozen):
    """All given conditions must hold on the step's output for a handoff to fire."""

    min_confidence: float | None = Field(default=None, ge=0, le=1)
    risk_score_above: float | None = None
    intent: str | None = Field(default=None, min_length=1, max_length=64)
    classification: str | None = Field(default=None, min_length=1, max_length=64)
    has_key: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,128}$")


class Handoff(_Frozen):
    name: str = Field(pattern=NAME_PATTERN)
    source_sequence: str = Field(pattern=NAME_PATTERN)
    source_step: str = Field(pattern=NAME_PATTERN)
    target_sequence: str = Field(pattern=NAME_PATTERN)
    conditions: Conditions = Field(default_factory=Conditions)
    context_map: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True
    operator_id: str | None = None


class Policy(_Frozen):
    """The effective routes, sequences and handoffs of one operator."""

    routes: list[Route] = Field(default_factory=list)
    sequences: list[Sequence] = Field(default_factory=list)
    handoffs: list[Handoff] = Field(default_factory=list)

    def route_for(self, event_type: str) -> Route | None:
        return next((r for r in self.routes if r.event_type == event_type and r.enabled), None)

    def sequence(self, name: str) -> Sequence | None:
        return next((s for s in self.sequences if s.name == name), None)

    def handoffs_from(self, sequence: str, step: str) -> list[Handoff]:
        return [h for h in self.handoffs
                if h.enabled and h.source_sequence == sequence and h.source_step == step]

    def without_owner(self) -> dict[str, Any]:
        """The policy's content, operator ids left out (to compare defaults with seeds)."""
        return self.model_dump(mode="json", exclude={
            "routes": {"__all__": {"operator_id"}}, "sequences": {"__all__": {"operator_id"}},
            "handoffs": {"__all__": {"operator_id"}}})


def parse(model: type[M], data: Any, *, field: str) -> M:
    """model.model_validate(data), refusing bad input as ValidationFailed('field.path', rule)."""
    return validated(model, data, field=field)


DEAD_LETTER_BASE_S = 60.0
DEAD_LETTER_CAP_S = 3600.0


def dead_letter_delay_s(attempts: int) -> float:
    """Wait before retry number attempts+1 of a dead letter: 1 min * 4^attempts, capped at 1 h."""
    return min(DEAD_LETTER_BASE_S * 4.0 ** min(max(attempts, 0), 16), DEAD_LETTER_CAP_S)


def step_retry_delay_s(retry: int) -> float:
    """Wait before retry number retry (1-based) of a step: 1 s, 2 s, 4 s."""
    return RETRY_DELAYS_S[min(max(retry, 1), len(RETRY_DELAYS_S)) - 1]
