"""The table's columns fit its width: fixed widths, columns dropped in a set order on narrow
terminals, the room left shared out (format.column_widths)."""

from __future__ import annotations

from fleet_tui.domain.status import TaskStatus
from fleet_tui.ui.format import COLUMNS, column_widths


def used(widths: dict[str, int]) -> int:
    return sum(w + 2 for w in widths.values())


def test_columns_never_need_more_than_the_room_while_any_can_go() -> None:
    for room in range(60, 260):
        widths = column_widths(room)
        assert used(widths) == room, room  # no horizontal scrolling, no room wasted
        assert list(widths) == [c.key for c in COLUMNS if c.key in widths]  # table order kept


def test_every_status_fits_its_column() -> None:
    assert column_widths(200)["status"] >= max(len(s) for s in TaskStatus)


def test_narrow_terminals_drop_operator_then_branch_first() -> None:
    assert set(column_widths(200)) == {c.key for c in COLUMNS}
    assert "operator" not in column_widths(110) and "branch" in column_widths(110)
    assert {"id", "status", "agent", "description"} <= set(column_widths(60))


def test_the_description_takes_what_is_left() -> None:
    assert column_widths(300)["description"] > column_widths(200)["description"] >= 48


def test_the_agent_column_shows_agent_and_model_whole_before_the_description_grows() -> None:
    # 160 terminal columns leave the table about 123 cells beside the side panels
    for room in (121, 123, 125, 140):
        assert column_widths(room)["agent"] >= len("demo/demo-small"), room
