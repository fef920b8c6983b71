"""Bad spawn input is refused with the field and the rule, and creates nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from fleet_tui.domain.errors import ValidationFailed
from fleet_tui.domain.models import SpawnRequest
from fleet_tui.domain.models import SYSTEM
from tests.fixtures.engine import operator


@pytest.mark.parametrize("changes, field", [
    ({"repo": "/nonexistent/repo"}, "repo"),
    ({"base_branch": "no-such-branch"}, "base_branch"),
    ({"base_branch": "-rf"}, "base_branch"),
    ({"branch": "bad..branch"}, "branch"),
    ({"branch": "has space"}, "branch"),
    ({"agent": "nosuchagent"}, "agent"),
    ({"model": "not-a-demo-model"}, "model"),
])
async def test_bad_input_names_the_field_and_creates_nothing(
        make_conductor: Any, git_repo: Path, changes: dict[str, str], field: str) -> None:
    conductor = await make_conductor()
    request = SpawnRequest(**{"description": "x", "repo": str(git_repo), **changes})
    with pytest.raises(ValidationFailed) as info:
        await conductor.spawn(operator(), request)
    assert info.value.field == field
    assert (await conductor.status(SYSTEM, all_operators=True)).tasks == []
    assert not conductor.settings.worktree_base.exists() or not any(conductor.settings.worktree_base.iterdir())


async def test_a_plain_directory_is_not_a_repository(make_conductor: Any, tmp_path: Path) -> None:
    conductor = await make_conductor()
    with pytest.raises(ValidationFailed, match="repo: not a git repository"):
        await conductor.spawn(operator(), SpawnRequest(description="x", repo=str(tmp_path)))


@pytest.mark.parametrize("payload, field", [
    ({"description": ""}, "description"),
    ({"priority": 101}, "priority"),
    ({"task_type": "poetry"}, "task_type"),
    ({"idempotency_key": "has spaces"}, "idempotency_key"),
])
def test_request_model_names_the_field(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        SpawnRequest(**{"description": "ok", "repo": "/r", **payload})
    assert info.value.errors()[0]["loc"] == (field,)
