"""The dead-letter queue on real rows: the backoff schedule as retries fail, resolution on
success, manual retry and discard, tenant visibility."""

from __future__ import annotations

from datetime import datetime, UTC

import pytest

from fleet_tui.domain.errors import NotFoundError, TaskLiveError
from tests.integration.router_harness import Harness, make_harness, new_operator, step


@pytest.fixture
async def failed(database) -> tuple[Harness, int]:
    h = make_harness(database)
    # letters of other tests share the session database; theirs fall due in 2030, not now
    h.wall.now = datetime(2000, 1, 1, tzinfo=UTC)
    await h.service.admin.upsert(h.operator, "sequence", {"name": "fragile", "steps": [step("x", "test_boom")]})
    result = await h.service.router.run("fragile", {"task_id": "dlq001"}, operator_id=h.op, event_type="ev")
    assert result.dead_letter_id is not None
    return h, result.dead_letter_id


async def letter(h: Harness, letter_id: int) -> dict:
    rows = await h.service.dlq.list(h.operator, include_closed=True)
    return next(r for r in rows if r["id"] == letter_id)


async def test_due_retries_follow_1_4_16_60_minutes_then_resolve(failed) -> None:
    h, letter_id = failed
    start = h.wall.now
    assert await h.service.dlq.retry_due() == []  # not due yet
    waits = []
    for _ in range(4):
        due = (await letter(h, letter_id))["next_attempt_at"]
        waits.append((due - h.wall.now).total_seconds())
        h.clock.now += waits[-1]  # the adapter's breaker lives on the same time line
        h.wall.now = due
        [rerun] = [r for r in await h.service.dlq.retry_due() if r.dead_letter_id == letter_id]
        assert rerun.status == "failed"
    assert waits == [60, 240, 960, 3600]
    assert (await letter(h, letter_id))["attempts"] == 4
    h.recorder.broken = False
    h.clock.now += 3600
    h.wall.now = (await letter(h, letter_id))["next_attempt_at"]
    [ok] = await h.service.dlq.retry_due()
    assert ok.status == "succeeded"
    row = await letter(h, letter_id)
    assert row["status"] == "resolved" and row["run_id"] == ok.run_id and h.wall.now > start
    assert await h.service.dlq.list(h.operator) == []


async def test_manual_retry_ignores_the_schedule_and_discard_closes(failed) -> None:
    h, letter_id = failed
    again = await h.service.dlq.retry(h.operator, letter_id)
    assert again.status == "failed" and (await letter(h, letter_id))["attempts"] == 1
    await h.service.dlq.discard(h.operator, letter_id)
    assert (await letter(h, letter_id))["status"] == "discarded"
    with pytest.raises(TaskLiveError):
        await h.service.dlq.retry(h.operator, letter_id)
    with pytest.raises(NotFoundError):
        await h.service.dlq.discard(h.operator, 10**9)


async def test_other_operators_do_not_see_or_touch_the_letter(failed) -> None:
    h, letter_id = failed
    stranger = new_operator()
    assert await h.service.dlq.list(stranger) == []
    with pytest.raises(NotFoundError):
        await h.service.dlq.discard(stranger, letter_id)
    assert (await letter(h, letter_id))["status"] == "pending"
