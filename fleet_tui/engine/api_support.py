"""Engine capabilities the HTTP face needs beyond the Conductor's operator actions:
a redacted configuration view, Prometheus metrics, reputation queries, test notifications
and external events. ApiSupport holds the narrow collaborators they use, built by the
composition root (session.api_support_for); the api room may not reach the store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg

from fleet_tui.config import Settings
from fleet_tui.domain.models import Operator, TaskType
from fleet_tui.engine.kit.breaker import BreakerRegistry
from fleet_tui.engine.kit.bus import Event, Notice
from fleet_tui.engine.choice.reputation import Reputation, reputation
from fleet_tui.engine.ports import Background, Dispatch
from fleet_tui.store import event_receipts
from fleet_tui.store import notifications as notification_store
from fleet_tui.store import outcomes
from fleet_tui.store.db import Database
from fleet_tui.store.errors import CONNECTION_LOST, DatabaseUnavailableError, describe_failure, is_connection_lost

if TYPE_CHECKING:  # the metrics (and prometheus_client) load on the first scrape
    from fleet_tui.engine.ops.metrics import ProcessFigures

REDACTED = "***"


def config_view(settings: Settings) -> dict[str, Any]:
    """The effective settings as JSON, so that a sovereign can inspect the fleet without
    leaking keys: every secret is a SecretStr in Settings and dumps as asterisks; the
    database URL shows everything but its password."""
    view = settings.model_dump(mode="json")
    url = settings.database.url.get_secret_value() if settings.database.url is not None else None
    if url:
        view["database"]["url"] = _without_password(url)
    return view


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:{REDACTED}@{host}" if ":" in credentials else url


@dataclass(frozen=True, kw_only=True)
class ApiSupport:
    """db: the fleet's database; publish: onto the faces' bus; dispatch: to the event
    router; background: run beside the caller; breakers: the router's (looked up at use:
    the router is built on first use); process: this conductor's own figures."""

    db: Database
    publish: Callable[[Event], None]
    dispatch: Dispatch
    background: Background
    breakers: Callable[[], BreakerRegistry]
    process: ProcessFigures

    async def reputation_query(self, operator: Operator, *, agent: str, model: str | None,
                               task_type: TaskType | None) -> Reputation:
        counts = await outcomes.outcome_counts(
            self.db, operator=operator, agent=agent, model=model,
            task_type=None if task_type is None else str(task_type))
        return reputation(counts.successes, counts.failures)

    async def send_test_notification(self, operator: Operator) -> int:
        """Record a notification of type test (the outbox relay delivers it like any other)
        and tell the faces. Returns the notification id."""
        summary = f"test notification requested by {operator.id}"
        async with self.db.tenant(operator) as conn:
            notification_id = await notification_store.record(
                conn, task_id=None, operator_id=operator.id, type="test", summary=summary)
        assert notification_id is not None  # None only for a repeated dedup_key, and this has none
        self.publish(Notice("test", None, summary, {"notification_id": notification_id}))
        return notification_id

    async def publish_external_event(self, *, event_id: str, kind: str, source: str, task_id: str | None,
                                     summary: str, data: dict[str, Any], replay_window_s: float) -> bool:
        """A verified external event (forge webhook, alert): shown to the faces as a Notice and
        handed to the event router, which runs the sequence routed for `external.<kind>` (if
        any) in the background, so the caller is answered at once. event_id is the sender's
        message id: False (and nothing published) when any conductor of the fleet received it
        before."""
        if not await event_receipts.first_receipt(self.db, event_id, keep_s=replay_window_s):
            return False
        self.publish(Notice(f"external.{kind}", task_id, summary,
                            {"event_id": event_id, "source": source, "data": data}))
        # The sender's data first: it never overrides the fields validated above.
        context = {**data, "event_id": event_id, "source": source, "task_id": task_id, "summary": summary}
        self.background(self._dispatch(f"external.{kind}", context), name=f"event-{event_id}")
        return True

    async def _dispatch(self, event_type: str, context: dict[str, Any]) -> None:
        await self.dispatch(event_type, context, operator_id="system")

    async def metrics_text(self, operator: Operator) -> tuple[bytes, str]:
        """Prometheus text exposition of the fleet (from the database) and this conductor's own
        counters and histograms, with its content type (engine.ops.metrics, prometheus_client)."""
        from fleet_tui.engine.ops.metrics import CONTENT_TYPE, exposition

        body = await exposition(self.db, process=self.process, breakers=self.breakers())
        return body, CONTENT_TYPE

    async def database_down(self, timeout_s: float = 2.0) -> str | None:
        """None when the database answers a trivial query within timeout_s, else why not."""
        try:
            async with asyncio.timeout(timeout_s):
                async with self.db.system(kind="read") as conn:
                    await conn.fetchval("SELECT 1")
        except TimeoutError:
            return f"the database did not answer within {timeout_s:g}s"
        except Exception as exc:
            return database_failure(exc) or f"database error ({type(exc).__name__})"
        return None


# --- the database away -------------------------------------------------------------------

RETRY_AFTER_S = 5
# What a request may raise when the database is unreachable; database_failure() decides.
DATABASE_FAILURES: tuple[type[Exception], ...] = (
    *CONNECTION_LOST, DatabaseUnavailableError, asyncpg.InterfaceError)


def database_failure(exc: BaseException) -> str | None:
    """A short reason when exc means the database cannot be reached, else None."""
    if isinstance(exc, DatabaseUnavailableError) or is_connection_lost(exc):
        return describe_failure(exc)
    return None

