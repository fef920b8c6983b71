"""The task table repaints only what changed: a changed cell evicts its own row's cached
renders (not the whole table's), a cursor move re-renders only the rows it touched, and
the ages tick many rows in one flush. Whatever the caches hold must look exactly like
DataTable's own render from nothing. The footer hides verbs in place, and still follows a
keymap change."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rich.segment import Segment
from textual.render import measure
from textual.widgets import DataTable, Input
from textual.widgets._footer import FooterKey

from fleet_tui.engine.kit.bus import TaskChanged
from fleet_tui.ui.app import make_app
from fleet_tui.ui.verbs import TASK_VERBS, applies
from fleet_tui.ui.format import matches
from fleet_tui.ui.widgets.task_table import MANY_ROWS, TaskTable
from tests.ui.helpers import footer_actions, until
from tests.ui.seeded import ME, NOW, S, SeededConductor, _task

SIZE = (150, 30)  # ~25 rows on screen out of 80: the cursor scrolls the view


def fleet(n: int = 80) -> list[Any]:
    return [_task(i, S.RUNNING if i % 3 else S.CANCELLED, f"task number {i}", minutes=1 + i) for i in range(n)]


def screen_lines(table: TaskTable) -> list[list[tuple[str, Any]]]:
    return [[(seg.text, seg.style) for seg in table.render_line(y) if isinstance(seg, Segment)]
            for y in range(table.size.height)]


def fresh_lines(table: TaskTable) -> list[list[tuple[str, Any]]]:
    """The same view as DataTable itself renders it: every cache emptied, rows rendered by
    its own method (not TaskTable's cursor-independent caching)."""
    table._clear_caches()
    table._update_count += 1
    table._render_line_in_row = DataTable._render_line_in_row.__get__(table)  # type: ignore[method-assign]
    try:
        return screen_lines(table)
    finally:
        del table._render_line_in_row


def row_text(table: TaskTable, task_id: str) -> str:
    y = table.get_row_index(task_id) + 1 - int(table.scroll_y)  # + the header line
    return table.render_line(y).text


async def test_a_changed_task_repaints_its_row_only_and_cached_rows_match_a_fresh_render() -> None:
    tasks = fleet()
    conductor = SeededConductor(tasks)
    clock = [NOW]
    app = make_app(conductor=conductor, operator=ME, now=lambda: clock[0])
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, app.engine_ready.is_set, what="engine ready")
        table = app.main.table
        assert table._targeted_updates  # this Textual's DataTable has the caches it expects
        for key in ["down"] * 40 + ["up"] * 12:  # scrolls down, then back up a little
            await pilot.press(key)
        await pilot.pause(0.05)
        screen_lines(table)  # fill the caches with this view

        target = next(t for t in tasks if t.status == S.RUNNING and 0 <= table.get_row_index(t.id) - int(table.scroll_y) < 20)
        before_count = table._update_count
        conductor.bus.publish(TaskChanged(target.model_copy(update={"status": S.FAILED, "retry_count": 2})))
        await until(pilot, lambda: table.tasks[target.id].status == S.FAILED, what="the change applied")
        await pilot.pause(0.05)
        assert "failed" in row_text(table, target.id) and "3/4" in row_text(table, target.id)
        assert table._update_count == before_count  # not a whole-table invalidation
        cached = screen_lines(table)
        assert cached == fresh_lines(table)

        # the ages tick: every row's age changes in one flush
        clock[0] = NOW + timedelta(hours=2)
        table.refresh_ages()
        await pilot.pause(0.05)
        assert "2h" in row_text(table, target.id)
        cached = screen_lines(table)
        assert cached == fresh_lines(table)

        # the cursor moves on (and scrolls): cached rows still match a fresh render
        for key in ["down"] * 30:
            await pilot.press(key)
        await pilot.pause(0.05)
        cached = screen_lines(table)
        assert cached == fresh_lines(table)


async def test_a_filter_that_hides_most_rows_and_its_clearing_keep_order_cursor_and_tasks() -> None:
    tasks = fleet(300)
    app = make_app(conductor=SeededConductor(tasks), operator=ME, now=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, app.engine_ready.is_set, what="engine ready")
        table = app.main.table
        order = table.visible_ids
        box = app.main.query_one("#filter", Input)
        all_cells = list(table._rendered.values())  # every task's cells, as first shown
        selected = "t0123ab"
        table.move_cursor(row=order.index(selected), animate=False)
        # most rows leave (made again), a few leave (trimmed), all come back
        shown: dict[str, int] = {}
        for text in ("number 12", "number 123", "", "number 1"):
            box.value = text
            await pilot.pause(0.1)
            expected = [task_id for task_id in order if matches(table.tasks[task_id], text)]
            shown[text] = len(expected)
            assert table.visible_ids == expected, text  # in the sort order, however they came
            assert table.selected_task().id == selected  # the cursor stayed on its task
            assert fresh_lines(table) == screen_lines(table)
        assert 300 - shown["number 12"] > MANY_ROWS > shown["number 12"] - shown["number 123"] > 0  # both ways
        assert len(table.tasks) == 300  # hidden, never forgotten
        # column widths as DataTable's own measuring makes them (every task was shown once)
        console = app.console
        for column in table.ordered_columns:
            assert column.content_width == max(column.label.cell_len, max(
                measure(console, cells[str(column.key.value)], 1) for cells in all_cells))


async def test_the_footer_hides_and_shows_verbs_in_place_as_the_cursor_moves() -> None:
    tasks = fleet(12)
    app = make_app(conductor=SeededConductor(tasks), operator=ME, now=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, app.engine_ready.is_set, what="engine ready")
        await until(pilot, lambda: "stop" in footer_actions(app) or "delete" in footer_actions(app),
                    what="footer keys")
        # the footer is made again while the screen's first bindings arrive (focus, engine
        # ready): the keys the moves start from are those that stay put for a while
        keys_before: set[FooterKey] = set()
        for _ in range(50):
            keys_now = set(app.screen.query(FooterKey))
            if keys_now == keys_before:
                break
            keys_before = keys_now
            await pilot.pause(0.2)
        else:
            raise AssertionError("the footer kept being made again with no cursor move")
        seen: set[frozenset[str]] = set()
        for _ in range(6):  # statuses alternate running/cancelled down the table
            await pilot.press("down")
            await pilot.pause(0.05)
            task = app.main.selected()
            # "detail" is on enter, which the focused table's own binding takes in the footer
            expected = {verb for verb in TASK_VERBS if applies(verb, task)} - {"detail"}
            shown = footer_actions(app)
            assert shown & TASK_VERBS == expected, (task.status, shown)
            seen.add(frozenset(expected))
        assert len(seen) >= 2  # the verbs did change on the way
        # the keys shown at first are the same widgets still (hidden or shown, never remade);
        # the footer may add a key it lacked (a binding that only applies later)
        assert keys_before <= set(app.screen.query(FooterKey))


async def test_a_keymap_change_reaches_the_footer() -> None:
    app = make_app(conductor=SeededConductor(fleet(6)), operator=ME, now=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, app.engine_ready.is_set, what="engine ready")
        await until(pilot, lambda: "new" in footer_actions(app), what="footer keys")
        app.set_keymap({"fleet.new": "x"})  # keys the footer was not made with: it is made again
        await until(pilot, lambda: any(k.action == "new" and k.key == "x" and k.display
                                       for k in app.screen.query(FooterKey)), what="the remapped key")
        assert not any(k.action == "new" and k.key == "n" for k in app.screen.query(FooterKey))
