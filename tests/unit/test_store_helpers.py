"""Pure helpers of the store: URL handling, app-role password, messages. No I/O but tmp files."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet_tui.domain.errors import ConfigError
from fleet_tui.domain.models import Operator, Tier
from fleet_tui.store.connect import with_database, with_user
from fleet_tui.store.errors import describe_connect_error, redact_url
from fleet_tui.store.migrations import load_migrations
from fleet_tui.store.roles import PASSWORD_FILE, app_password, scram_verifier
from fleet_tui.store.tasks import LIVE_SQL, denial_message, new_task_id


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("postgresql://u:s3cret@db:5432/fleet") == "postgresql://u:***@db:5432/fleet"
    assert redact_url("postgresql://u@db/fleet") == "postgresql://u@db/fleet"
    line = describe_connect_error("postgresql://u:s3cret@db/x", OSError("refused\nmore"))
    assert "s3cret" not in line and line.endswith("refused")


def test_with_user_and_database_keep_host_and_query() -> None:
    url = "postgresql://owner:pw@db:6543/fleet?sslmode=require"
    assert with_user(url, "fleet_app", "p@ss") == "postgresql://fleet_app:p%40ss@db:6543/fleet?sslmode=require"
    assert with_user(url, "fleet_app", None) == "postgresql://fleet_app@db:6543/fleet?sslmode=require"
    socket = "postgresql://postgres@/postgres?host=%2Ftmp%2Fx&port=5432"
    assert with_database(socket, "other") == "postgresql://postgres@/other?host=%2Ftmp%2Fx&port=5432"


def test_app_password_derived_from_owner_password_or_file(tmp_path: Path) -> None:
    first = app_password("postgresql://o:pw@h/d", "fleet_app", tmp_path)
    assert first == app_password("postgresql://o:pw@h/d", "fleet_app", tmp_path / "elsewhere")
    assert first != app_password("postgresql://o:other@h/d", "fleet_app", tmp_path)
    assert app_password("postgresql://o@h/d", "fleet_app", tmp_path) is None
    secret = tmp_path / PASSWORD_FILE
    secret.write_text("from-file\n")
    secret.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        app_password("postgresql://o@h/d", "fleet_app", tmp_path)
    secret.chmod(0o600)
    assert app_password("postgresql://o:pw@h/d", "fleet_app", tmp_path) == "from-file"


def test_scram_verifier_shape_and_no_clear_text() -> None:
    verifier = scram_verifier("hunter2", "fleet_app")
    assert verifier.startswith("SCRAM-SHA-256$4096:") and "hunter2" not in verifier
    assert verifier == scram_verifier("hunter2", "fleet_app")


def test_denial_message_names_tier_count_and_limit() -> None:
    alice = Operator(id="alice", tier=Tier.BUILDER)
    assert denial_message(alice, 1, 1) == "builder operator alice has 1 live task; the builder limit is 1"
    assert denial_message(alice, 0, 0) == "builder operator alice has 0 live tasks; the builder limit is 0"


def test_task_ids_fit_the_check_constraint() -> None:
    import re

    assert all(re.fullmatch(r"[a-z0-9]{6,32}", new_task_id()) for _ in range(200))
    assert "'merged'" in LIVE_SQL and "'proposed'" not in LIVE_SQL


def test_migrations_are_numbered_and_paired() -> None:
    found = load_migrations()
    assert found and [m.version for m in found] == list(range(1, len(found) + 1))
    assert all(m.up_sql.strip() and m.down_sql.strip() for m in found)
