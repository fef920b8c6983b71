"""ApiSupport (what the HTTP face needs beyond operator actions) on small fakes of its
collaborators: a database whose connection answers from a script, a bus, a dispatcher and a
background runner. No PostgreSQL, no conductor."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from fleet_tui.domain.models import Operator, Tier
from fleet_tui.engine.api_support import ApiSupport
from fleet_tui.engine.kit.bus import Event, Notice

OP = Operator(id="ann", tier=Tier.BUILDER)


class FakeConn:
    def __init__(self, db: FakeDb) -> None:
        self.db = db

    async def execute(self, sql: str, *args: Any) -> str:
        return "DELETE 0"

    async def fetchval(self, sql: str, *args: Any) -> Any:
        if self.db.fails is not None:
            raise self.db.fails
        if "fleet_event_receipts" in sql:  # the first receipt of an id inserts it
            first = args[0] not in self.db.receipts
            self.db.receipts.add(args[0])
            return True if first else None
        if "fleet_notifications" in sql:
            self.db.notifications.append(args)
            return len(self.db.notifications)
        return 1

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, int]:
        return {"successes": 3, "failures": 1}


class FakeDb:
    def __init__(self, fails: BaseException | None = None, hangs: bool = False) -> None:
        self.fails, self.hangs = fails, hangs
        self.receipts: set[str] = set()
        self.notifications: list[tuple[Any, ...]] = []
        self.tenants: list[str] = []

    @asynccontextmanager
    async def system(self, kind: str = "write") -> AsyncIterator[FakeConn]:
        if self.hangs:
            await asyncio.sleep(3600)
        yield FakeConn(self)

    @asynccontextmanager
    async def tenant(self, operator: Operator, kind: str = "write") -> AsyncIterator[FakeConn]:
        self.tenants.append(operator.id)
        yield FakeConn(self)


class Harness:
    def __init__(self, db: FakeDb | None = None) -> None:
        self.db = db or FakeDb()
        self.published: list[Event] = []
        self.dispatched: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.background: list[asyncio.Task[Any]] = []
        self.support = ApiSupport(
            db=self.db, publish=self.published.append, dispatch=self.dispatch,  # type: ignore[arg-type]
            background=self.run_beside, breakers=self.no_breakers, process=object())  # type: ignore[arg-type]

    async def dispatch(self, event_type: str, context: dict[str, Any], **how: Any) -> None:
        self.dispatched.append((event_type, context, how))

    def run_beside(self, work: Coroutine[Any, Any, Any], *, name: str) -> None:
        self.background.append(asyncio.ensure_future(work))

    def no_breakers(self) -> Any:
        raise AssertionError("only the metrics read the breakers")


async def test_an_external_event_is_published_and_dispatched_once() -> None:
    h = Harness()
    event = dict(event_id="msg_1", kind="alert", source="pager", task_id=None, summary="disk full",
                 data={"host": "ci-1", "source": "spoofed"}, replay_window_s=600)
    assert await h.support.publish_external_event(**event)  # type: ignore[arg-type]
    assert not await h.support.publish_external_event(**event)  # type: ignore[arg-type]
    await asyncio.gather(*h.background)
    assert [(e.kind, e.message) for e in h.published if isinstance(e, Notice)] == [("external.alert", "disk full")]
    [(event_type, context, how)] = h.dispatched
    assert event_type == "external.alert" and how == {"operator_id": "system"}
    assert context["source"] == "pager" and context["host"] == "ci-1"  # the validated field wins


async def test_a_test_notification_is_recorded_as_the_operator_and_shown() -> None:
    h = Harness()
    assert await h.support.send_test_notification(OP) == 1
    assert h.db.tenants == ["ann"]
    [notice] = h.published
    assert isinstance(notice, Notice) and notice.kind == "test" and notice.data == {"notification_id": 1}


async def test_reputation_counts_the_operators_runs() -> None:
    h = Harness()
    rep = await h.support.reputation_query(OP, agent="claude", model=None, task_type=None)
    assert rep.n == 4 and h.db.tenants == ["ann"]


async def test_the_database_probe_says_why_it_is_down() -> None:
    assert await Harness().support.database_down() is None
    assert await Harness(FakeDb(hangs=True)).support.database_down(timeout_s=0.05) == \
        "the database did not answer within 0.05s"
    assert await Harness(FakeDb(fails=ValueError("x"))).support.database_down() == "database error (ValueError)"
