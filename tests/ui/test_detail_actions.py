"""The task verbs from the detail screen, where the operator is: stop asks first (the main
screen's question), retry, merge asks first; their keys are always in the footer, dimmed
while they do not apply, and such a key says why in one line. Real conductor: PostgreSQL,
git, tmux, the demo agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.widgets._footer import FooterKey

from fleet_tui.domain.models import SpawnRequest
from fleet_tui.domain.status import TaskStatus
from fleet_tui.domain.models import SYSTEM
from fleet_tui.ui.app import make_app
from fleet_tui.ui.screens.confirm import QUESTIONS, ConfirmScreen
from fleet_tui.ui.screens.detail import DetailScreen
from tests.fixtures.engine import operator
from tests.ui.helpers import until

S = TaskStatus
SIZE = (150, 40)
VERBS = {"stop", "retry", "merge", "attach"}


def footer_keys(app: Any) -> dict[str, bool]:
    """The detail footer's verb keys: action -> enabled (False: shown dimmed)."""
    return {key.action: not key.has_class("-disabled") for key in app.screen.query(FooterKey)
            if key.display and key.action in VERBS}


def notices(app: Any) -> list[str]:
    return [n.message for n in app._notifications]


async def open_detail(pilot: Any, app: Any) -> DetailScreen:
    await until(pilot, app.engine_ready.is_set, what="engine ready")
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, DetailScreen), what="detail screen")
    return app.screen


async def test_stop_from_the_detail_screen_asks_then_kills_and_dims_what_no_longer_applies(
        make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    op = operator()
    task = (await conductor.spawn(op, SpawnRequest(description="long\nFLEET-DEMO: sleep 60",
                                                   repo=str(git_repo)))).task
    app = make_app(conductor=conductor, operator=op)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        detail = await open_detail(pilot, app)
        await until(pilot, lambda: footer_keys(app) == {"stop": True, "attach": True, "retry": False,
                                                        "merge": False}, what="verbs in the footer")
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="stop asks first")
        expected = QUESTIONS["stop"].format(id=task.id, status=S.RUNNING, base=task.base_branch)
        assert app.screen.question == expected  # the main screen's question
        assert (await conductor.registry.get(task.id, operator=SYSTEM)).status == S.RUNNING
        await pilot.press("y")
        await until(pilot, lambda: app.screen is detail and detail.record.status == S.CANCELLED,
                    what="cancelled, still on the detail screen")
        assert not await conductor.runtime_for("tmux").is_alive(task.id)
        await until(pilot, lambda: footer_keys(app) == {"stop": False, "attach": False, "retry": False,
                                                        "merge": False}, what="every verb dimmed")
        for key, why in (("s", "there is nothing to stop"), ("r", "only a failed or rejected task"),
                         ("m", "only a ready task can be merged"), ("a", "no agent is running")):
            await pilot.press(key)
            await until(pilot, lambda why=why: any(why in n for n in notices(app)), what=f"why {key} does not apply")
            assert app.screen is detail  # nothing else happened
        assert all("\n" not in n for n in notices(app))  # one line each


async def test_retry_and_merge_from_the_detail_screen(make_conductor: Any, git_repo: Path) -> None:
    # a failed task waits for the operator; the demo reviewers take the retried change to ready
    conductor = await make_conductor(retry__auto=False, review__enabled=True)
    op = operator()
    task = (await conductor.spawn(op, SpawnRequest(description="flaky\nFLEET-DEMO: fail-until-attempt 2",
                                                   repo=str(git_repo)))).task
    app = make_app(conductor=conductor, operator=op)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: app.engine_ready.is_set()
                    and app.main.table.tasks[task.id].status == S.FAILED, what="failed row")
        detail = await open_detail(pilot, app)
        await until(pilot, lambda: footer_keys(app).get("retry") is True, what="retry offered")
        await pilot.press("r")  # no question: nothing is lost by retrying
        await until(pilot, lambda: detail.record.status == S.READY, timeout_s=60, what="ready after the retry")
        assert detail.record.retry_count == 1
        await until(pilot, lambda: footer_keys(app).get("merge") is True, what="merge offered")
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="merge asks first")
        await pilot.press("y")
        await until(pilot, lambda: detail.record.status == S.MERGED, timeout_s=30, what="merged")


async def test_reads_that_end_after_the_detail_screen_is_gone_change_nothing_and_raise_nothing() -> None:
    """esc right after enter: the screen's reads (attempts, audit, diff) can end after its
    widgets are gone; the query then failed in the worker and ended the whole app (seen in
    the real terminal on a loaded machine: NoMatches '#attempts', '#diff')."""
    from tests.ui.seeded import ME, SeededConductor, frozen_now

    app = make_app(conductor=SeededConductor(), operator=ME, now=frozen_now)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, app.engine_ready.is_set, what="engine ready")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), what="the detail screen")
        detail = app.screen
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main and not detail.is_attached, what="back")
        await detail._load()  # a read ending now, with the screen gone
        assert app.is_running and app.screen is app.main
