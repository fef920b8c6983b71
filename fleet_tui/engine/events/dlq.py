"""The dead-letter queue: failed critical steps and follow-ups, retried with backoff
(1 min * 4^n, capped at 1 h) by retry_due(), or by hand; listed and discarded."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any, NoReturn

from fleet_tui.domain.errors import NotFoundError, TaskLiveError
from fleet_tui.domain.models import Operator
from fleet_tui.engine.events.policy import dead_letter_delay_s
from fleet_tui.engine.events.runner import RunResult, WallClock, utc_now
from fleet_tui.store import dead_letters as letter_store
from fleet_tui.store.db import Database

if TYPE_CHECKING:
    from fleet_tui.engine.events.runner import Router

__all__ = ["DeadLetterQueue", "dead_letter_delay_s"]
OPEN = ["pending", "retrying"]


class DeadLetterQueue:
    def __init__(self, db: Database, router: Router, *, wall_clock: WallClock = utc_now) -> None:
        self._db = db
        self._router = router
        self._wall_clock = wall_clock

    async def list(self, operator: Operator, *, include_closed: bool = False,
                   limit: int = 200) -> list[dict[str, Any]]:
        """The operator's letters (admins: all), newest first; open ones unless asked."""
        async with self._db.tenant(operator, kind="read") as conn:
            return await letter_store.list_letters(conn, statuses=None if include_closed else OPEN, limit=limit)

    async def depth(self) -> int:
        async with self._db.system(kind="read") as conn:
            return await letter_store.depth(conn)

    async def retry(self, operator: Operator, letter_id: int) -> RunResult:
        """Retry one pending letter now, whatever its schedule."""
        async with self._db.tenant(operator) as conn:
            letter = await letter_store.claim(conn, letter_id)
            if letter is None:
                await self._explain_missing(conn, letter_id, "retried")
        return await self._rerun(letter)

    async def discard(self, operator: Operator, letter_id: int) -> None:
        async with self._db.tenant(operator) as conn:
            if not await letter_store.discard(conn, letter_id):
                await self._explain_missing(conn, letter_id, "discarded")

    async def retry_due(self, *, limit: int = 20) -> builtins.list[RunResult]:  # list: the method above
        """Retry every letter whose backoff has passed (a worker calls this on a schedule)."""
        async with self._db.system() as conn:
            letters = await letter_store.claim_due(conn, self._wall_clock(), limit)
        return [await self._rerun(letter) for letter in letters]

    async def _rerun(self, letter: dict[str, Any]) -> RunResult:
        try:
            return await self._router.run(
                letter["sequence_name"], dict(letter["context"]), operator_id=letter["operator_id"],
                event_type=letter["event_type"], depth=letter["depth"], trace_id=letter["trace_id"],
                dead_letter=(letter["id"], letter["attempts"]))
        except BaseException:
            async with self._db.system() as conn:
                await letter_store.release(conn, letter["id"])
            raise

    @staticmethod
    async def _explain_missing(conn: Any, letter_id: int, verb: str) -> NoReturn:
        existing = await letter_store.get(conn, letter_id)
        if existing is None:
            raise NotFoundError("dead letter", str(letter_id))
        raise TaskLiveError(f"dead letter {letter_id} is {existing['status']}; only pending letters can be {verb}")
