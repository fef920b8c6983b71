"""Open and close a whole engine: the database (embedded unless DATABASE_URL), the real
parts, the conductor. Faces use this and nothing below it."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from fleet_tui.config import Settings
from fleet_tui.engine.conductor import Conductor
from fleet_tui.engine.parts import build_parts
from fleet_tui.engine.tracing import configure_logging

log = logging.getLogger(__name__)


async def open_conductor(settings: Settings, **overrides: Any) -> Conductor:
    from fleet_tui.store.db import Database

    db = await Database.open(settings)
    try:
        return Conductor(build_parts(settings, db, **overrides))
    except BaseException:
        await db.close()
        raise


async def close_conductor(conductor: Conductor) -> None:
    await conductor.shutdown()
    closer = getattr(conductor.parts.forge, "aclose", None)
    if closer is not None:
        await closer()
    await conductor.parts.db.close()


async def run_headless(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """The conductor and its monitor until SIGTERM/SIGINT; agents keep running after."""
    configure_logging(json_lines=True)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    conductor = await open_conductor(settings)
    try:
        await conductor.start()
        log.info("headless conductor running", extra={"operator": settings.operator.id})
        await stop.wait()
        log.info("shutting down: loops stop, agents keep running")
    finally:
        await close_conductor(conductor)
