"""pydantic's errors as the faces word them: one ValidationFailed naming the field and the
rule ("priority: must be at most 100"), never pydantic's multi-line report."""

from __future__ import annotations

from typing import Any, TypeVar
from collections.abc import Mapping

from pydantic import BaseModel, ValidationError

from fleet_tui.domain.errors import ValidationFailed

M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: Any, *, field: str = "", names: Mapping[str, str] | None = None) -> M:
    """model.model_validate(data), or ValidationFailed for its first error. `field` prefixes
    the error's path; `names` renames top-level fields as the user typed them (a CLI flag)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise failure(exc, field=field, names=names) from None


def failure(exc: ValidationError, *, field: str = "", names: Mapping[str, str] | None = None) -> ValidationFailed:
    first = exc.errors()[0]
    loc = [str(part) for part in first["loc"]]
    if loc and names and loc[0] in names:
        loc[0] = names[loc[0]]
    path = ".".join(part for part in (field, *loc) if part) or field or "input"
    return ValidationFailed(path, rule(first))


def rule(error: Mapping[str, Any]) -> str:
    """One pydantic error as a rule: what the value must be."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind == "missing":
        return "is required"
    if kind == "string_too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else f"must be at least {ctx['min_length']} characters"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']:,} characters"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx['pattern']}"
    bounds = {"less_than_equal": ("at most", "le"), "less_than": ("below", "lt"),
              "greater_than_equal": ("at least", "ge"), "greater_than": ("above", "gt")}
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {ctx[key]}"
    if kind in ("enum", "literal_error"):
        return f"must be one of {ctx['expected']}"
    return str(error["msg"]).removeprefix("Value error, ")
