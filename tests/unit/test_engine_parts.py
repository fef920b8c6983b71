"""What moved out of EngineParts into the rooms, on small fakes (no PostgreSQL, no tmux):
notifications, runtimes, task places, execution rows and model outcomes, profiles, the
review pipeline's source, and the container the composition root fills."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fleet_tui.config import ReviewerSpec, ReviewSettings, Settings
from fleet_tui.domain.errors import ValidationFailed
from fleet_tui.domain.models import RuntimeKind, TaskRecord
from fleet_tui.domain.status import TaskStatus as S
from fleet_tui.engine.attempts.executions import Executions, cost_of
from fleet_tui.engine.choice.agent_choice import profile_named
from fleet_tui.engine.choice.model_outcome import note_model_outcome
from fleet_tui.engine.kit.breaker import BreakerRegistry
from fleet_tui.engine.kit.bus import Event, Notice
from fleet_tui.engine.kit.places import TaskPlaces
from fleet_tui.engine.kit.runtimes import Runtimes
from fleet_tui.engine.ledger.notices import Notifications
from fleet_tui.engine.review.pipeline import ReviewPipeline, pipeline_source
from fleet_tui.infra.agents import builtin_profiles
from fleet_tui.infra.secrets import SecretsProvider


def a_task(**fields: Any) -> TaskRecord:
    now = datetime.now(UTC)
    base: dict[str, Any] = {"id": "t-1", "operator_id": "op", "status": S.RUNNING, "version": 1,
                            "description": "fix it", "repo": "/repo", "base_branch": "main",
                            "created_at": now, "updated_at": now}
    return TaskRecord(**{**base, **fields})


class FakeConn:
    def __init__(self) -> None:
        self.inserted: list[tuple[Any, ...]] = []

    async def fetchval(self, sql: str, *args: Any) -> int:
        self.inserted.append(args)
        return len(self.inserted)


class FakeDb:
    pool = None  # the registry's admission batches hold it; nothing here reaches it

    def __init__(self) -> None:
        self.conn = FakeConn()

    @asynccontextmanager
    async def system(self, **_: Any) -> AsyncIterator[FakeConn]:
        yield self.conn


async def test_a_notification_is_recorded_then_told_to_the_faces() -> None:
    db, heard = FakeDb(), list[Event]()
    notices = Notifications(db, publish=heard.append)  # type: ignore[arg-type]
    await notices.notify(a_task(), "failed", "it broke", dedup_key="k-1")
    await notices.notify_operator("op-2", "budget_exceeded", "over budget")
    assert [(args[0], args[1], args[2], args[5]) for args in db.conn.inserted] == [
        ("t-1", "op", "failed", "k-1"), (None, "op-2", "budget_exceeded", None)]
    assert heard == [Notice("failed", "t-1", "it broke"), Notice("budget_exceeded", None, "over budget")]


class FakeRuntime:
    kind = RuntimeKind.TMUX

    def __init__(self, tail: list[str] | None = None) -> None:
        self.lines = tail
        self.released: list[str] = []

    async def tail(self, task_id: str, n: int) -> list[str]:
        if self.lines is None:
            raise FileNotFoundError("the log went with the process")
        return self.lines

    async def release(self, task_id: str) -> None:
        self.released.append(task_id)


async def test_runtimes_are_made_on_first_use_and_an_unknown_kind_is_refused() -> None:
    made: list[FakeRuntime] = []

    def tmux() -> Any:
        made.append(FakeRuntime())
        return made[-1]

    runtimes = Runtimes({RuntimeKind.TMUX: tmux})
    assert made == [] and runtimes.built == {}
    assert runtimes.get("tmux") is runtimes.get(RuntimeKind.TMUX) is made[0]
    await runtimes.release("t-1", "tmux")
    assert made[0].released == ["t-1"] and len(made) == 1
    with pytest.raises(ValidationFailed, match="docker is not available"):
        runtimes.get(RuntimeKind.DOCKER)


def test_a_task_place_is_what_its_record_says(tmp_path: Path) -> None:
    from fleet_tui.infra.worktree import WorktreeManager

    places = TaskPlaces(Runtimes({}), WorktreeManager(tmp_path / "wt", tmp_path / "snap"))
    ref = places.change_ref(a_task(branch=None, worktree_path=None))
    assert (ref.repo, ref.branch, ref.base, ref.worktree) == (Path("/repo"), "fleet/t-1", "main", None)
    ref = places.change_ref(a_task(branch="feat", worktree_path="/wt/t-1"))
    assert (ref.branch, ref.worktree) == ("feat", Path("/wt/t-1"))


async def test_the_model_breaker_counts_only_the_models_failures() -> None:
    breakers = BreakerRegistry(failure_threshold=1)
    task = a_task(agent="demo", model="demo-small")
    await note_model_outcome(breakers, task, exit_code=1, failure="timeout")  # the task's, not the model's
    assert breakers.peek("model:demo-small") is None or breakers.get("model:demo-small").would_allow()
    await note_model_outcome(breakers, task, exit_code=1, failure="agent_exit")
    assert not breakers.get("model:demo-small").would_allow()
    await note_model_outcome(breakers, a_task(agent="demo", model=None), exit_code=0, failure=None)
    assert breakers.get("model:demo").would_allow()  # no model: the agent is its own


async def test_usage_is_read_from_the_agents_output_tail_when_its_profile_reports_it() -> None:
    profiles = builtin_profiles()
    demo = profiles["demo"]
    assert demo.usage_patterns or demo.stream, "the demo agent reports its usage"
    runtime = FakeRuntime(tail=None)
    executions = Executions(FakeDb(), profiles=profiles, runtime_for=lambda kind: runtime,  # type: ignore[arg-type]
                            breakers=BreakerRegistry())
    task = a_task(agent="demo", runtime="tmux")
    assert await executions.reported_usage(task) is None  # the log is gone: no usage, no error
    assert await executions.reported_usage(a_task(agent="nobody")) is None


def test_the_cost_is_the_reported_one_else_the_tokens_at_list_price() -> None:
    from fleet_tui.infra.agents import Usage

    assert cost_of(a_task(), None) is None
    assert cost_of(a_task(model="anything"), Usage(cost_usd=0.25, input_tokens=10)) == 0.25
    assert cost_of(a_task(model="not-a-priced-model"), Usage(input_tokens=10, output_tokens=5)) is None


def test_a_profile_by_name_else_the_default_else_a_refusal_naming_the_known_ones() -> None:
    profiles = builtin_profiles()
    assert profile_named(profiles, "demo", None) is profiles["demo"]
    assert profile_named(profiles, "demo", "claude") is profiles["claude"]
    with pytest.raises(ValidationFailed, match="unknown agent profile 'nope'; known: .*demo"):
        profile_named(profiles, "demo", "nope")


def test_the_review_pipeline_is_the_configured_one_else_builtin_reviewers_made_once() -> None:
    configured = ReviewPipeline([ReviewerSpec(kind="builtin", focus="logic", name="mine")])
    assert pipeline_source(configured, ReviewSettings())() is configured
    fallback = pipeline_source(None, ReviewSettings())
    assert fallback() is fallback() and fallback().labels == ReviewPipeline.builtin(ReviewSettings()).labels


def test_the_parts_made_from_others_use_the_overriding_ones(tmp_path: Path) -> None:
    """A test's override (here the secrets) reaches what is made from the parts; what is
    made is shared (one profile lookup for routing and prompting)."""
    from fleet_tui.engine.parts import build_parts

    settings = Settings(data_dir=tmp_path)
    secrets, notices = SecretsProvider({"K": "v"}), Notifications(FakeDb(), publish=print)  # type: ignore[arg-type]
    parts = build_parts(settings, FakeDb(), secrets=secrets, notices=notices)  # type: ignore[arg-type]
    assert parts.prompting.secrets is secrets
    assert parts.notices is notices and parts.agents.notify_operator == notices.notify_operator
    assert parts.agents.profile is parts.prompting.profile is parts.profile
    assert parts.profile(None).name == settings.agents.default_profile
    assert parts.places.runtime_for("tmux") is parts.runtimes.get("tmux")
    assert (parts.reviews is not None) == settings.review.enabled
