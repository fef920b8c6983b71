"""Branch, task id and worktree path validation: bad input is refused naming the rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given, strategies as st

from fleet_tui.domain.errors import ValidationFailed
from fleet_tui.infra.worktree import WorktreeManager, validate_branch, validate_task_id


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", "must not be empty"),
        ("feat;rm -rf /", "may contain only"),
        ("a$(touch x)", "may contain only"),
        ("a`id`", "may contain only"),
        ("a|b", "may contain only"),
        ("a&b", "may contain only"),
        ("has space", "may contain only"),
        ("a\x00b", "NUL"),
        ("a..b", "'..'"),
        ("../../etc", "'..'"),
        ("-delete", "start with '-'"),
        ("x" * 129, "at most 128"),
        ("topic.lock", ".lock"),
        ("a//b", "'//'"),
        ("/abs", "'/'"),
        ("a/.hidden", "start with '.'"),
        ("trailing.", "end with"),
        ("new\nline", "may contain only"),
    ],
)
def test_bad_branch_names_are_refused_naming_the_rule(name: str, rule: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        validate_branch(name)
    assert info.value.field == "branch"
    assert rule in info.value.rule


def test_field_name_is_reported() -> None:
    with pytest.raises(ValidationFailed) as info:
        validate_branch("-x", field="base_branch")
    assert str(info.value).startswith("base_branch: ")


@pytest.mark.parametrize("name", ["main", "fleet/abc-123", "feature/x.y_z", "a" * 128, "release/1.2"])
def test_good_branch_names_pass(name: str) -> None:
    assert validate_branch(name) == name


@given(st.text(max_size=140))
@example("0\n")  # found by hypothesis: `$` also matches before a final newline
def test_accepted_names_satisfy_every_rule(name: str) -> None:
    try:
        validate_branch(name)
    except ValidationFailed:
        return
    assert len(name) <= 128 and ".." not in name and not name.startswith("-")
    assert all(c.isascii() and (c.isalnum() or c in "._/-") for c in name)


@pytest.mark.parametrize("task_id", ["", "../x", "A", "-x", "a/b", "a b", "x" * 65, "a.b"])
def test_bad_task_ids_are_refused(task_id: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        validate_task_id(task_id)
    assert info.value.field == "task_id"


def test_resolve_path_stays_under_base(tmp_path: Path) -> None:
    manager = WorktreeManager(tmp_path / "wt", tmp_path / "snap")
    assert manager.resolve_path("abc123") == (tmp_path / "wt" / "abc123").resolve()
    with pytest.raises(ValidationFailed) as info:
        manager.confine(tmp_path / "wt" / ".." / "elsewhere")
    assert info.value.field == "worktree_path"
    with pytest.raises(ValidationFailed):
        manager.confine(tmp_path / "wt")
    assert not (tmp_path / "wt").exists()


def test_symlink_out_of_base_is_refused(tmp_path: Path) -> None:
    base = tmp_path / "wt"
    base.mkdir()
    (base / "evil").symlink_to(tmp_path)
    manager = WorktreeManager(base, tmp_path / "snap")
    with pytest.raises(ValidationFailed, match="under the worktree base"):
        manager.confine(base / "evil" / "x")
