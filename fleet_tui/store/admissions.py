"""Admission requests sent in batches (fleet_admit_many in sql/011): while one batch is with
the database, the requests arriving meanwhile wait and go together in the next one. Alone,
a request goes at once; under load, one take of the fleet lock, one statement and one
commit serve many requests, in arrival order, so every decision is still made in turn."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from fleet_tui.store.errors import as_validation_error

MAX_BATCH = 100  # a bound on one statement's work while it holds the fleet lock
SQL = "SELECT i, outcome, ref, live, fleet_live, task FROM fleet_admit_many($1)"


class AdmissionBatches:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[asyncpg.Record]]] = []
        self._sending = False

    async def decide(self, request: dict[str, Any]) -> asyncpg.Record:
        """The decision on one request (keys: fleet_admit_one's parameters without p_)."""
        done: asyncio.Future[asyncpg.Record] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, done))
        if not self._sending:
            self._sending = True
            asyncio.get_running_loop().create_task(self._send_all(), name="admission-batches")
        return await done

    async def _send_all(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                await self._send(batch)
        finally:
            self._sending = False

    async def _send(self, batch: list[tuple[dict[str, Any], asyncio.Future[asyncpg.Record]]]) -> None:
        try:
            rows = await self._pool.fetch(SQL, [request for request, _ in batch])
        except asyncpg.PostgresError as exc:
            if len(batch) > 1:  # one bad request fails the statement: decide each alone
                for one in batch:
                    await self._send([one])
                return
            _settle(batch[0][1], exception=as_validation_error(exc) or exc)
            return
        except asyncio.CancelledError:
            for _, done in batch:
                done.cancel()
            raise
        except Exception as exc:  # the database away: every waiter hears it
            for _, done in batch:
                _settle(done, exception=exc)
            return
        for row in rows:
            _settle(batch[row["i"] - 1][1], result=row)


def _settle(done: asyncio.Future[Any], *, result: Any = None, exception: BaseException | None = None) -> None:
    if done.done():  # its caller gave up waiting
        return
    if exception is not None:
        done.set_exception(exception)
    else:
        done.set_result(result)
