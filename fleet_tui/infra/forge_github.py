"""The github forge: the `gh` CLI (pr list / checks / diff / merge), rate-limit aware, with a
per-fleet budget of gh calls per rolling hour (CallBudget: in this process, or one in
PostgreSQL that every conductor of the fleet takes from).

JSON field names follow gh's manual (`gh pr list --json`, `gh pr checks --json`): number,
url, headRefOid, state; name, state, bucket (pass | fail | pending | skipping | cancel).
gh exits 8 when checks are pending and 1 when one failed, still printing the JSON."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections import deque
from pathlib import Path
from typing import Any
from collections.abc import Callable

from fleet_tui.domain.models import CIStatus
from fleet_tui.infra.forge_errors import (
    ForgeBudgetExceeded,
    ForgeError,
    ForgeRateLimited,
    ForgeUnavailable,
)
from fleet_tui.infra.forge_local import commits_ahead
from fleet_tui.infra.git import GitError
from fleet_tui.infra.proc import ProcResult, ProcTimeout, run
from fleet_tui.infra.protocols import CallBudget, Change, ChangeRef, CIResult, MergeResult

log = logging.getLogger(__name__)
BUDGET_WINDOW_S = 3600.0
BACKOFF_FIRST_S = 60.0
BACKOFF_CAP_S = 900.0
PENDING_EXIT = 8  # documented: "Additional exit codes: 8: Checks pending"
NO_CHECKS = "no checks reported"

# gh relays GitHub's wording: "API rate limit exceeded for ...", "You have exceeded a
# secondary rate limit", or an HTTP 429. A 403 alone is a permission problem, not a limit.
RATE_LIMIT_RE = re.compile(r"rate limit|HTTP 429|too many requests", re.IGNORECASE)
UNAVAILABLE_RE = re.compile(
    r"gh auth login|not logged|authentication|error connecting|could not resolve host"
    r"|dial tcp|connection refused|network is unreachable|i/o timeout|TLS handshake",
    re.IGNORECASE,
)
NOT_MERGEABLE_RE = re.compile(r"not mergeable|merge conflict|conflict", re.IGNORECASE)
FAILING_BUCKETS = {"fail", "cancel"}


class RollingBudget:
    """A CallBudget kept in this process: `limit` calls per rolling window. The engine gives
    a fleet's forge one kept in PostgreSQL instead, shared by every conductor."""

    def __init__(self, limit: int, window_s: float = BUDGET_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._calls: deque[float] = deque()  # start times of the calls in the window
        self._paused_until = 0.0

    @property
    def remaining(self) -> int:
        self._forget_old_calls(self._clock())
        return max(self.limit - len(self._calls), 0)

    async def take(self) -> float:
        now = self._clock()
        if now < self._paused_until:
            return -(self._paused_until - now)
        self._forget_old_calls(now)
        if len(self._calls) >= self.limit:
            return self._calls[0] + self.window_s - now
        self._calls.append(now)
        return 0.0

    async def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _forget_old_calls(self, now: float) -> None:
        while self._calls and self._calls[0] <= now - self.window_s:
            self._calls.popleft()


class GithubForge:
    name = "github"
    poll_floor_s = 30.0  # CI of a pending change is asked about at most this often (then less)

    def __init__(
        self,
        *,
        gh: str = "gh",
        repo: str | None = None,
        budget_per_hour: int = 1000,
        budget: CallBudget | None = None,
        timeout_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._gh = gh
        self._repo = repo
        self.budget: CallBudget = budget or RollingBudget(budget_per_hour, clock=clock)
        self._timeout_s = timeout_s
        self._clock = clock
        self._backoff_until = 0.0
        self._backoff_s = 0.0  # the current backoff step; 0 = none in force
        self._pr_numbers: dict[tuple[Path, str], int] = {}  # saves a pr list per cycle

    # --- the Forge protocol ---------------------------------------------------------------

    async def find_change(self, ref: ChangeRef) -> Change | None:
        prs = self._json(await self._call(
            ["pr", "list", "--head", ref.branch, "--state", "open",
             "--json", "number,url,headRefOid,state"], ref), "pr list")
        if not isinstance(prs, list) or not prs:
            self._pr_numbers.pop((ref.repo, ref.branch), None)
            return None
        pr = prs[0]
        number = int(pr["number"])
        self._pr_numbers[(ref.repo, ref.branch)] = number
        return Change(
            head_sha=str(pr.get("headRefOid", "")),
            commits_ahead=await self._local_commits_ahead(ref),
            pr_number=number,
            pr_url=pr.get("url"),
        )

    async def ci_status(self, ref: ChangeRef) -> CIResult:
        """No checks reported counts as passing, like the local forge with no CI command:
        a repository without CI must not hold its tasks forever."""
        number = await self._pr_number(ref)
        result = await self._call(["pr", "checks", str(number), "--json", "name,state,bucket"],
                                  ref, ok_exits=(0, 1, PENDING_EXIT))
        if not result.stdout.strip():
            if NO_CHECKS in result.stderr:
                return CIResult(CIStatus.PASSING, "no checks reported")
            raise ForgeError(f"gh pr checks {number} failed: {result.stderr.strip()[-300:]}")
        checks = self._json(result, "pr checks")
        return summarize_checks(checks if isinstance(checks, list) else [])

    async def diff(self, ref: ChangeRef) -> str:
        number = await self._pr_number(ref)
        return (await self._call(["pr", "diff", str(number)], ref)).stdout

    async def merge(self, ref: ChangeRef) -> MergeResult:
        number = await self._pr_number(ref)
        result = await self._call(["pr", "merge", str(number), "--merge"], ref, ok_exits=(0, 1))
        if result.ok:
            self._pr_numbers.pop((ref.repo, ref.branch), None)
            return MergeResult(True, f"merged PR #{number}")
        detail = result.stderr.strip()[-500:]
        if NOT_MERGEABLE_RE.search(detail):
            return MergeResult(False, f"PR #{number} is not mergeable: {detail}")
        raise ForgeError(f"gh pr merge {number} failed: {detail}")

    # --- budget and backoff ---------------------------------------------------------------

    @property
    def budget_remaining(self) -> int:
        """Calls left in this process's own budget (a shared budget: see fleet_limits)."""
        return getattr(self.budget, "remaining", self.budget.limit)

    async def _admit(self) -> None:
        """Raise instead of calling gh while backing off or once the window's budget is spent."""
        now = self._clock()
        if now < self._backoff_until:
            raise ForgeRateLimited(
                "github rate limited; backing off", retry_after_s=self._backoff_until - now
            )
        wait_s = await self.budget.take()
        if wait_s < 0:  # another conductor of the fleet was told "rate limit"
            self._backoff_until = now - wait_s
            raise ForgeRateLimited("github rate limited (seen by the fleet); backing off", retry_after_s=-wait_s)
        if wait_s > 0:
            raise ForgeBudgetExceeded(
                f"gh budget of {self.budget.limit} calls per {self.budget.window_s / 3600:g}h spent",
                retry_after_s=wait_s)

    async def _rate_limited(self) -> ForgeRateLimited:
        self._backoff_s = min(self._backoff_s * 2, BACKOFF_CAP_S) if self._backoff_s else BACKOFF_FIRST_S
        self._backoff_until = self._clock() + self._backoff_s
        try:  # every conductor taking from the same budget backs off too
            await self.budget.pause(self._backoff_s)
        except Exception as exc:  # the database away: this one backs off at least
            log.warning("could not share the github backoff: %s", type(exc).__name__)
        return ForgeRateLimited("github rate limit exceeded", retry_after_s=self._backoff_s)

    # --- gh -------------------------------------------------------------------------------

    async def _call(self, args: list[str], ref: ChangeRef,
                    ok_exits: tuple[int, ...] = (0,)) -> ProcResult:
        await self._admit()
        argv = [self._gh, *args, *(["--repo", self._repo] if self._repo else [])]
        env = {**os.environ, "GH_PROMPT_DISABLED": "1", "NO_COLOR": "1", "GH_NO_UPDATE_NOTIFIER": "1"}
        try:
            result = await run(argv, cwd=ref.repo, timeout_s=self._timeout_s, env=env)
        except FileNotFoundError:
            raise ForgeUnavailable(f"{self._gh} not found on PATH") from None
        except ProcTimeout:
            raise ForgeUnavailable(f"gh {args[0]} {args[1]} timed out") from None
        detail = result.stderr.strip()[-300:]
        if not result.ok and not result.stdout.strip():
            if RATE_LIMIT_RE.search(detail):
                raise await self._rate_limited()
            if result.returncode == 4 or UNAVAILABLE_RE.search(detail):  # 4: auth required
                raise ForgeUnavailable(f"gh {args[0]} {args[1]}: {detail}")
        if result.returncode not in ok_exits:
            raise ForgeError(f"gh {args[0]} {args[1]} failed ({result.returncode}): {detail}")
        self._backoff_s = 0.0  # an answer that was not a limit resets the backoff ladder
        return result

    @staticmethod
    def _json(result: ProcResult, what: str) -> Any:
        try:
            return json.loads(result.stdout)
        except json.JSONDecodeError:
            raise ForgeError(f"gh {what} printed something that is not JSON") from None

    async def _pr_number(self, ref: ChangeRef) -> int:
        number = self._pr_numbers.get((ref.repo, ref.branch))
        if number is None:
            change = await self.find_change(ref)
            if change is None or change.pr_number is None:
                raise ForgeError(f"no open pull request for {ref.branch}")
            number = change.pr_number
        return number

    async def _local_commits_ahead(self, ref: ChangeRef) -> int:
        # gh's PR JSON would need the whole commit list; the branch is local anyway.
        try:
            ahead = await commits_ahead(ref.repo, ref.base, ref.branch)
        except (GitError, ProcTimeout, OSError):
            ahead = 0
        return ahead or 1  # an open PR has at least one commit


def summarize_checks(checks: list[dict[str, Any]]) -> CIResult:
    """Any fail/cancel -> failing; else any pending -> pending; else passing (skipping is ok)."""
    if not checks:
        return CIResult(CIStatus.PASSING, "no checks reported")
    buckets = [str(check.get("bucket", "pending")).lower() for check in checks]
    lines = [f"{check.get('name', '?')}: {bucket} ({check.get('state', '?')})"
             for check, bucket in zip(checks, buckets)]
    if any(bucket in FAILING_BUCKETS for bucket in buckets):
        status = CIStatus.FAILING
    elif any(bucket == "pending" for bucket in buckets):
        status = CIStatus.PENDING
    else:
        status = CIStatus.PASSING
    return CIResult(status, "\n".join(lines))
