"""A batch of fleet events still queued while the app quits: the main screen's widgets go
one by one, and the health panel went before the table (seen once in CI, on Python 3.14: a
NoMatches for HealthPanel from the batch handler, raised out of the app)."""

from __future__ import annotations

from fleet_tui.ui.messages import FleetBatch
from fleet_tui.ui.widgets.fleet_panels import HealthPanel
from tests.ui.seeded import seeded_app


async def test_a_batch_after_the_health_panel_went_changes_nothing_and_raises_nothing() -> None:
    app = seeded_app()
    async with app.run_test(size=(150, 40)) as pilot:
        await pilot.pause()
        await app.main.query_one(HealthPanel).remove()  # as the app's teardown does, panel first
        batch = FleetBatch()
        batch.tick = {"cycles": 7, "last_cycle_ms": 1.0, "errors": 0}
        app.post_message(batch)
        await pilot.pause()
        assert app.main.table.is_attached
    assert app.return_code in (0, None)
