"""A seeded fleet for snapshots and screenshots: fixed records and a frozen clock.

SeededConductor mirrors the real Conductor's method signatures (status, detail, diff,
follow_logs, logs, spawn, stop, retry, delete, merge, start, shutdown) and its bus,
governor, monitor and settings, so the app cannot tell it from the real one. Behaviour
tests use the real conductor; this exists only so the SVGs are byte-stable."""

from __future__ import annotations

from datetime import datetime, timedelta, UTC
from pathlib import Path
from typing import Any
from collections.abc import AsyncIterator

from fleet_tui.config import Settings
from fleet_tui.domain.errors import ValidationFailed
from fleet_tui.domain.models import (
    CIStatus, Operator, SpawnRequest, SpawnResult, StatusSummary, TaskDetail, TaskRecord, TaskType, Tier,
)
from fleet_tui.domain.status import LIVE_STATUSES, TaskStatus
from fleet_tui.engine.kit.bus import EventBus
from fleet_tui.engine.spawn.governor import TierLimits

NOW = datetime(2025, 5, 1, 12, 0, 0, tzinfo=UTC)
ME = Operator(id="ana", tier=Tier.SOVEREIGN, is_admin=True)
S = TaskStatus


def frozen_now() -> datetime:
    return NOW


def _task(n: int, status: TaskStatus, description: str, *, minutes: int, operator: str = "ana",
          agent: str = "claude", model: str | None = "sonnet-4", **extra: Any) -> TaskRecord:
    task_id = f"t{n:04d}ab"
    branch = extra.pop("branch", f"fleet/{task_id}")
    return TaskRecord(
        id=task_id, operator_id=operator, status=status, version=3, description=description,
        repo="/srv/repos/shop", base_branch="main", branch=branch, agent=agent, model=model,
        created_at=NOW - timedelta(minutes=minutes), updated_at=NOW - timedelta(minutes=1),
        spawned_at=NOW - timedelta(minutes=minutes - 1), tmux_session=f"fleet-{task_id}", **extra)


VERDICTS = [
    {"reviewer": "builtin-security", "focus": "security", "verdict": "approve", "comments": [], "error": None},
    {"reviewer": "claude-logic", "focus": "logic", "verdict": "request_changes",
     "comments": ["export_json() drops rows with a NULL total", "no test covers --json with an empty export"],
     "error": None},
    {"reviewer": "gemini-architecture", "focus": "architecture", "verdict": "comment",
     "comments": ["consider a formatter registry instead of an if-chain"], "error": None},
]


def seeded_tasks() -> list[TaskRecord]:
    return [
        _task(1, S.RUNNING, "fix the flaky login test", minutes=7, retry_count=0, needs_input=True),
        _task(2, S.REJECTED, "add a --json flag to the export command", minutes=42, retry_count=1,
              ci_status=CIStatus.PASSING, review_status="changes requested", review_verdicts=VERDICTS),
        _task(3, S.READY, "document the retry budget in README", minutes=95, agent="aider",
              model="haiku-4", task_type=TaskType.DOCS, ci_status=CIStatus.PASSING,
              review_status="approved", review_verdicts=VERDICTS[:1]),
        _task(4, S.FAILED, "refactor the billing module into services", minutes=130, agent="codex",
              model="gpt-5-codex", retry_count=2, failure_reason="exit 1: tests failed", exit_code=1),
        _task(5, S.MERGED, "bump httpx to 0.28", minutes=60 * 26, operator="ben", agent="demo", model=None),
        _task(6, S.SPAWNING, "add rate limiting to the public API", minutes=1, operator="ben",
              branch=None),
        _task(7, S.CANCELLED, "rewrite the CLI in Rust", minutes=300, operator="ben", agent="demo", model=None),
    ]


LOG_LINES = [
    "[demo] prompt: fix the flaky login test (attempt 1)",
    "\x1b[32m✔\x1b[0m read AGENTS.md, CONTRIBUTING.md",
    "\x1b[1mrunning\x1b[0m pytest tests/test_login.py -x",
    "tests/test_login.py::test_login_redirects PASSED",
    "tests/test_login.py::test_login_session_expiry \x1b[31mFAILED\x1b[0m",
    "E   AssertionError: session expired 1s early (clock skew)",
    "[demo] editing app/auth.py: freeze the clock in the fixture",
    "[demo] committed 3f2c1a9 \"fix: freeze clock in login fixture\"",
    "usage: input_tokens=5120 output_tokens=812 cost_usd=0.0231",
]

DIFF = """diff --git a/tests/conftest.py b/tests/conftest.py
index 3b18e51..a9f2c4d 100644
--- a/tests/conftest.py
+++ b/tests/conftest.py
@@ -10,7 +10,9 @@ import pytest
 @pytest.fixture
 def session_clock():
-    return time.time
+    frozen = time.time()
+    return lambda: frozen
+
 @pytest.fixture
 def client(app):
     return app.test_client()
"""

AUDIT = [
    {"created_at": NOW - timedelta(minutes=7), "actor": "ana", "action": "admit", "from_status": None,
     "to_status": "proposed", "detail": {"reason": "architect 1/3 live"}},
    {"created_at": NOW - timedelta(minutes=7), "actor": "conductor", "action": "transition",
     "from_status": "proposed", "to_status": "spawning", "detail": {}},
    {"created_at": NOW - timedelta(minutes=6), "actor": "conductor", "action": "transition",
     "from_status": "spawning", "to_status": "running", "detail": {"reason": "agent started in tmux"}},
]


FLEET_FIGURES: dict[str, float] = {
    "active_agents": 2, "outbox_pending": 3, "outbox_lag_seconds": 0.8, "dlq_depth": 1,
    "spawn_queue_depth": 2, "open_breakers": 0, "monitor_running": 1, "monitor_cycles": 4211,
    "monitor_last_cycle_ms": 12.5, "monitor_errors": 0,
}


class _Monitor:
    def health(self) -> dict[str, Any]:
        return {"running": True, "last_cycle_ms": 12.5, "cycles": 4211, "errors": 0, "degraded": []}


class SeededConductor:
    def __init__(self, tasks: list[TaskRecord] | None = None) -> None:
        self.settings = Settings(data_dir=Path("/tmp/fleet-seeded"))
        self.bus = EventBus()
        self.governor = TierLimits(self.settings.governor)
        self.monitor: Any = None
        self.tasks = {t.id: t for t in (tasks if tasks is not None else seeded_tasks())}

    async def start(self, *, monitor: bool = True) -> None:
        self.monitor = _Monitor()

    async def shutdown(self) -> None:
        pass

    async def change_feed(self, operator: Operator) -> None:
        return None  # nothing changes behind its back

    async def output_host(self, operator: Operator, task_id: str) -> str | None:
        return None

    async def attach_elsewhere(self, task: TaskRecord) -> str | None:
        return None

    async def spawn_field_errors(self, request: SpawnRequest) -> dict[str, str]:
        return {}

    async def fleet_health(self) -> dict[str, float]:
        """Fixed figures, as engine.ops.metrics.collect names them: the health panel's rows."""
        return dict(FLEET_FIGURES)

    async def status(self, operator: Operator, *, all_operators: bool = False, limit: int = 500) -> StatusSummary:
        tasks = list(self.tasks.values())[:limit]
        live = sum(1 for t in tasks if t.operator_id == operator.id and t.status in LIVE_STATUSES)
        return StatusSummary(operator_id=operator.id, tier=operator.tier, live=live,
                             limit=self.governor.limit_for(operator.tier), tasks=tasks,
                             fleet_capacity=self.governor.fleet_capacity)

    async def detail(self, operator: Operator, task_id: str) -> TaskDetail:
        task = self.tasks[task_id]
        runs = [{"attempt": i + 1, "agent": task.agent, "model": task.model,
                 "started_at": NOW - timedelta(minutes=6 - i), "exit_code": 1 if i < task.retry_count else None,
                 "failure": "tests failed" if i < task.retry_count else None}
                for i in range(task.retry_count + 1)]
        return TaskDetail(task=task, audit=AUDIT, executions=runs)

    async def diff(self, operator: Operator, task_id: str) -> str:
        return DIFF

    async def logs(self, operator: Operator, task_id: str, n: int = 200) -> list[str]:
        return LOG_LINES[-n:]

    async def logs_from(self, operator: Operator, task_id: str, cursor: int | None,
                        max_lines: int = 200) -> tuple[list[str], int]:
        return (LOG_LINES[-max_lines:], len(LOG_LINES)) if cursor is None else (LOG_LINES[cursor:], len(LOG_LINES))

    async def follow_logs(self, operator: Operator, task_id: str, *, after: int | None = None) -> AsyncIterator[str]:
        for line in LOG_LINES[after or 0:]:
            yield line

    async def spawn(self, operator: Operator, request: SpawnRequest) -> SpawnResult:
        raise ValidationFailed("repo", f"not a git repository: {request.repo}")

    async def stop(self, operator: Operator, task_id: str) -> TaskRecord:
        return self.tasks[task_id]

    async def retry(self, operator: Operator, task_id: str, *, allow: list[str] | None = None) -> TaskRecord:
        return self.tasks[task_id]

    async def answer(self, operator: Operator, task_id: str, text: str) -> TaskRecord:
        return self.tasks[task_id]

    async def delete(self, operator: Operator, task_id: str) -> None:
        return None

    async def merge(self, operator: Operator, task_id: str) -> TaskRecord:
        return self.tasks[task_id]


def seeded_app(theme: str = "textual-dark") -> Any:
    from fleet_tui.ui.app import make_app

    return make_app(conductor=SeededConductor(), operator=ME, repo="/srv/repos/shop", now=frozen_now,
                    theme=theme)
