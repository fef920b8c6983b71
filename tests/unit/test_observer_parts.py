"""The observer's pure parts: result caps, log cursors, errors
rebuilt across the database, the banner's address, and `--attach` on the command line."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fleet_tui import cli
from fleet_tui.domain.commands import describe_error, rebuild_error
from fleet_tui.domain.errors import FleetError, SpawnDeniedError, TaskLiveError, ValidationFailed
from fleet_tui.domain.commands import validate_command
from fleet_tui.engine.workers.command_worker import MAX_DIFF_BYTES, MAX_LOG_BYTES, capped_lines, capped_text
from fleet_tui.engine.observer.observer import fleet_address
from fleet_tui.infra.docker_runtime import LogCursor, _log_entry
from fleet_tui.ui.launch import observer_banner


def test_results_are_capped_newest_lines_and_diff_head_kept() -> None:
    lines = [f"line {i} " + "é" * 300 for i in range(5_000)]
    capped = capped_lines(lines)
    assert capped["truncated"] and capped["lines"][-1] == lines[-1]
    assert len(json.dumps(capped).encode()) <= MAX_LOG_BYTES + 100
    assert capped_lines(["a", "b"]) == {"lines": ["a", "b"], "truncated": False}
    diff = "+" + "\x01\n" * 400_000  # escapes badly in JSON: the cap is on the encoded size
    head = capped_text(diff)
    assert head["truncated"] and diff.startswith(head["diff"])
    assert len(json.dumps(head).encode()) <= MAX_DIFF_BYTES + 100
    assert capped_text("small") == {"diff": "small", "truncated": False}


@pytest.mark.parametrize("bad", [-1, "12", 1.5, True, None, 2**63])
def test_a_logs_cursor_is_a_non_negative_whole_number(bad: Any) -> None:
    with pytest.raises(ValidationFailed) as refused:
        validate_command("logs", "abcdef123456", {"from": bad, "lines": 10})
    assert refused.value.field == "from" and "whole number from 0" in refused.value.rule
    assert validate_command("logs", "abcdef123456", {"from": 0})[2] == {"lines": 200, "from": 0}
    assert validate_command("logs", "abcdef123456", {"lines": 5})[2] == {"lines": 5}  # the tail form, as before


def test_a_docker_log_cursor_is_a_millisecond_and_a_count_in_one_int() -> None:
    entry = _log_entry(b"2026-01-02T03:04:05.123456789Z hello \xff\n", 0)
    assert (entry.ms, entry.text) == (1767323045123, "hello \ufffd")
    assert _log_entry(b"2026-01-02T03:04:05Z whole second", 0).ms == 1767323045000
    cursor = LogCursor(entry.ms, 3)
    assert LogCursor.unpack(cursor.pack()) == cursor and 0 < cursor.pack() < 2**63


def test_errors_cross_the_database_as_the_same_kind_and_message() -> None:
    for raised in (ValidationFailed("repo", "no such directory: /x"),
                   SpawnDeniedError("builder operator o has 1 live task; the builder limit is 1",
                                    operator_id="o", tier="builder", live=1, limit=1),
                   TaskLiveError("task abc is running; stop it before deleting it")):
        kind, message, detail = describe_error(raised)
        rebuilt = rebuild_error(kind, message, json.loads(json.dumps(detail)))
        assert type(rebuilt) is type(raised) and str(rebuilt) == str(raised)
    assert rebuild_error("ValidationFailed", "repo: x", {"field": "repo", "rule": "x"}).field == "repo"
    unknown = rebuild_error("SomethingNew", "it broke", None)
    assert type(unknown) is FleetError and str(unknown) == "it broke"


def test_the_banner_names_the_fleet_but_never_its_password() -> None:
    banner = observer_banner("postgresql://fleet:s3cret-pw@db.example:6543/fleet?sslmode=require")
    assert banner == "observing the fleet at db.example:6543/fleet (conductor runs elsewhere)"
    assert "s3cret" not in banner and "fleet:" not in banner
    assert fleet_address("postgresql:///fleet?host=/run/postgresql") == "/run/postgresql/fleet"


def test_attach_opens_the_observer_face_on_that_database(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_run_ui(settings: Any, *, observe: bool = False) -> int:
        seen.update(url=settings.database_url, observe=observe)
        return 0

    monkeypatch.setattr(cli, "run_ui", fake_run_ui)
    assert cli.main(["--attach", "postgresql://u:p@h:5432/fleet"]) == 0
    assert seen == {"url": "postgresql://u:p@h:5432/fleet", "observe": True}


def test_attach_with_headless_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--attach", "postgresql://u:secret@h/fleet", "--headless"]) == 2
    err = capsys.readouterr().err
    assert "cannot be combined with --headless" in err and "secret" not in err
