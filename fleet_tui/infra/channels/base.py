"""What a notification is and what a channel promises. Channels never log or raise their
secrets (webhook URLs, bot tokens): messages go through `scrub` first."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, UTC
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable
from collections.abc import Iterable

Outcome = Literal["success", "failure", "warning", "info"]


class NotificationType(StrEnum):
    SPAWNED = "spawned"
    PR_READY = "pr_ready"
    CI_FAILED = "ci_failed"
    COMPLETED = "completed"
    FAILED = "failed"
    ABANDONED = "abandoned"
    CANCELLED = "cancelled"
    BUDGET_EXCEEDED = "budget_exceeded"
    HEALTH_ALERT = "health_alert"
    TEST = "test"


DEFAULT_OUTCOME: dict[str, Outcome] = {
    NotificationType.SPAWNED: "info",
    NotificationType.PR_READY: "success",
    NotificationType.CI_FAILED: "failure",
    NotificationType.COMPLETED: "success",
    NotificationType.FAILED: "failure",
    NotificationType.ABANDONED: "failure",
    NotificationType.CANCELLED: "warning",
    NotificationType.BUDGET_EXCEEDED: "warning",
    NotificationType.HEALTH_ALERT: "warning",
    NotificationType.TEST: "info",
}


@dataclass(frozen=True)
class Notification:
    event_id: str  # receivers deduplicate on it (delivery is at least once)
    type: str
    task_id: str | None
    summary: str
    outcome: Outcome | None = None  # None: the type's default outcome
    fields: dict[str, str] = field(default_factory=dict)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def resolved_outcome(self) -> Outcome:
        return self.outcome or DEFAULT_OUTCOME.get(self.type, "info")


class ChannelError(Exception):
    """A delivery attempt failed. retryable=False for answers that will not change
    (e.g. 400 bad request, 404 unknown webhook)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class RateLimited(ChannelError):
    def __init__(self, message: str, *, retry_after_s: float | None) -> None:
        super().__init__(message, retryable=True)
        self.retry_after_s = retry_after_s


@runtime_checkable
class Channel(Protocol):
    name: str

    async def send(self, n: Notification) -> None:
        """Deliver once or raise ChannelError / RateLimited."""
        ...


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every secret (longest first, so a token inside a URL goes too) with ***."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"
