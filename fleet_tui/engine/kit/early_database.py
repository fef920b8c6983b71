"""The embedded PostgreSQL, started on a thread while a face imports the rest of the engine.

pg_ctl waits in a process of its own, so the start and the imports overlap and the table
is ready sooner. Database.open then joins the running server
as usual (and says what went wrong, if the start failed: this thread only logs it)."""

from __future__ import annotations

import logging
import threading

from fleet_tui.config import Settings

log = logging.getLogger(__name__)


def start_early(settings: Settings) -> threading.Thread | None:
    """Begin starting the embedded server (none when DATABASE_URL names one, nor on the
    very first start: initdb is left to Database.open alone, once)."""
    if settings.database_url:
        return None
    from fleet_tui.store import embedded  # here, on the caller's thread: no import races

    root = settings.data_dir / "postgres"
    if not embedded.initialised(root):
        return None

    def start() -> None:
        try:
            embedded.start_sync(root)
        except Exception as exc:
            log.warning("embedded PostgreSQL did not start early (%s); the engine tries again", exc)

    thread = threading.Thread(target=start, name="fleet-early-database", daemon=True)
    thread.start()
    return thread
