"""A relay in its own process, for the kill -9 tests:

    python -m tests.integration.outbox_relay_proc DB_URL DATA_DIR NATS_URL PREFIX [--poison]

publishes to NATS under PREFIX until killed. --poison adds a sink that kills this process
(SIGKILL, no cleanup) whenever it is handed an event of type test.poison."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any
from collections.abc import Mapping, Sequence

from fleet_tui.engine.workers.outbox_relay import OutboxRelay
from fleet_tui.infra.nats_sink import NatsSink
from fleet_tui.store.db import Database
from tests.integration.outbox_harness import fast_outbox
from tests.fixtures.db import settings_for


class PoisonSink:
    name = "poison"

    async def deliver(self, events: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        if any(e["type"] == "test.poison" for e in events):
            os.kill(os.getpid(), signal.SIGKILL)
        return {}

    async def close(self) -> None:
        return None


async def main(db_url: str, data_dir: str, nats_url: str, prefix: str, poison: bool) -> None:
    db = await Database.open(settings_for(db_url, Path(data_dir)))
    sinks: list[Any] = [NatsSink(nats_url, subject_prefix=prefix)]
    if poison:
        sinks.insert(0, PoisonSink())
    relay = OutboxRelay(db, fast_outbox(batch_size=200, lease_s=1.0, crash_limit=3 if poison else 1000,
                                        poll_s=0.1), sinks, wake_url=db.app_url)
    relay.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(args[0], args[1], args[2], args[3], "--poison" in args))
