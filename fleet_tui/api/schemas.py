"""Request and response bodies of the HTTP API. Every route declares its models so that the
OpenAPI document describes every answer (the schemathesis test holds the app to it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, StrictInt, model_validator

from fleet_tui.domain.models import TASK_ID_PATTERN, SpawnRequest, TaskRecord

AGENT_PATTERN = r"^[a-z0-9_-]{1,64}$"
MODEL_PATTERN = r"^[A-Za-z0-9._:/-]{1,128}$"
IDEMPOTENCY_PATTERN = r"^[A-Za-z0-9._:/-]{1,200}$"
EVENT_KIND_PATTERN = r"^[a-z0-9_.:-]{1,64}$"


class FieldError(BaseModel):
    field: str
    rule: str


class ErrorBody(BaseModel):
    detail: str
    errors: list[FieldError] = Field(default_factory=list)
    trace_id: str | None = None


def _strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [*_strings_in(k), *_strings_in(v)]]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings_in(v)]
    return []


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class SpawnBody(SpawnRequest):
    """SpawnRequest as it arrives over the network: the repo is a path on the server, so
    it must be absolute; text must be valid UTF-8 (JSON may carry lone surrogates, which
    neither PostgreSQL nor the file system accept); numbers are JSON integers (strict: `true`,
    `"50"` or `50.0` are refused rather than read as 1 or 50)."""

    priority: StrictInt = Field(default=50, ge=0, le=100)
    max_retries: StrictInt | None = Field(default=None, ge=0, le=10)

    @model_validator(mode="after")
    def _network_rules(self) -> SpawnBody:
        for name in ("description", "repo", "base_branch", "branch"):
            value = getattr(self, name)
            if value is not None and not _encodable(value):
                raise ValueError(f"{name} must be valid UTF-8 text")
        if "\x00" in self.repo or not self.repo.startswith("/"):
            raise ValueError("repo must be an absolute path on the server")
        if any(len(part.encode()) > 255 for part in self.repo.split("/")):
            raise ValueError("repo has a path component longer than 255 bytes")
        return self

    def to_request(self, idempotency_key: str | None) -> SpawnRequest:
        data = self.model_dump()
        if idempotency_key is not None:
            data["idempotency_key"] = idempotency_key
        return SpawnRequest(**data)


class RetryBody(BaseModel):
    """Optional: permission rules granted to the task from now on (its next attempts and
    resumes), e.g. the rule `failure_context.asked[].grant` suggests for what the agent was refused."""

    allow: list[str] = Field(default_factory=list, max_length=20)


class AnswerBody(BaseModel):
    """The answer to an agent that waits for a person: its session resumes with this text."""

    text: str = Field(min_length=1, max_length=8000)


class TaskDetailOut(BaseModel):
    task: TaskRecord
    audit: list[dict[str, Any]] = Field(default_factory=list)
    executions: list[dict[str, Any]] = Field(default_factory=list)


class LogsOut(BaseModel):
    task_id: str
    lines: list[str]


class ReputationOut(BaseModel):
    agent: str
    model: str | None
    task_type: str | None
    score: float
    confidence: float | None
    n: int


class Accepted(BaseModel):
    accepted: bool = True
    id: str


class HealthOut(BaseModel):
    status: str
    monitor: dict[str, Any]
    database: str = "ok"  # or why it cannot be reached


class ExternalEvent(BaseModel):
    """A signed event from outside (forge webhook, alert) for the event router."""

    model_config = {"extra": "forbid"}

    type: str = Field(pattern=EVENT_KIND_PATTERN)
    source: str = Field(pattern=EVENT_KIND_PATTERN)
    task_id: str | None = Field(default=None, pattern=TASK_ID_PATTERN)
    summary: str = Field(default="", max_length=2000)
    data: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _utf8(self) -> ExternalEvent:
        if not all(_encodable(s) for s in [self.summary, *_strings_in(self.data)]):
            raise ValueError("text must be valid UTF-8")
        return self


class Jwks(BaseModel):
    keys: list[dict[str, Any]]
