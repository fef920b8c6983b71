"""GithubForge against the gh stand-in on PATH (tests/fakes/gh), which prints the JSON
shapes and exit codes gh documents. The git repository is real."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet_tui.domain.models import CIStatus
from fleet_tui.infra.forge_errors import (
    ForgeBudgetExceeded,
    ForgeError,
    ForgeRateLimited,
    ForgeUnavailable,
)
from fleet_tui.infra.forge_github import GithubForge
from fleet_tui.infra.protocols import ChangeRef, Forge
from tests.fixtures.fake_gh import FakeGh
from tests.fixtures.gitrepo import git

SHA = "3f786850e387550fdab836ed7e6dc881de23001b"
PR = {"number": 12, "headRefName": "task/1", "url": "https://github.com/acme/app/pull/12",
      "headRefOid": SHA, "state": "OPEN", "title": "Fix the flaky login test"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ref(git_repo: Path) -> ChangeRef:
    git(git_repo, "checkout", "-q", "-b", "task/1")
    for name in ("a.txt", "b.txt"):
        (git_repo / name).write_text(name)
        git(git_repo, "add", name)
        git(git_repo, "commit", "-q", "-m", f"add {name}")
    git(git_repo, "checkout", "-q", "main")
    return ChangeRef(repo=git_repo, branch="task/1", base="main")


def checks(*buckets: str) -> dict[str, list[dict[str, str]]]:
    states = {"pass": "SUCCESS", "fail": "FAILURE", "pending": "IN_PROGRESS",
              "skipping": "SKIPPED", "cancel": "CANCELLED"}
    return {"12": [{"name": f"job-{i}", "state": states[b], "bucket": b,
                    "link": "https://github.com/acme/app/actions/runs/1"}
                   for i, b in enumerate(buckets)]}


def test_github_forge_satisfies_the_protocol() -> None:
    assert isinstance(GithubForge(), Forge)


async def test_pr_found(fake_gh: FakeGh, ref: ChangeRef) -> None:
    fake_gh.scenario(prs=[PR, {**PR, "number": 3, "headRefName": "other"}])
    change = await GithubForge(repo="acme/app").find_change(ref)
    assert change is not None
    assert (change.pr_number, change.pr_url, change.head_sha) == (12, PR["url"], SHA)
    assert change.commits_ahead == 2  # counted from the local branch
    assert fake_gh.calls() == [["pr", "list", "--head", "task/1", "--state", "open",
                                "--json", "number,url,headRefOid,state", "--repo", "acme/app"]]


async def test_no_open_pr_is_no_change(fake_gh: FakeGh, ref: ChangeRef) -> None:
    fake_gh.scenario(prs=[{**PR, "state": "MERGED"}])
    assert await GithubForge().find_change(ref) is None
    with pytest.raises(ForgeError, match="no open pull request"):
        await GithubForge().ci_status(ref)


@pytest.mark.parametrize(
    ("buckets", "expected"),
    [
        (("pass", "pass"), CIStatus.PASSING),
        (("pass", "skipping"), CIStatus.PASSING),
        (("pass", "fail", "pending"), CIStatus.FAILING),
        (("pass", "cancel"), CIStatus.FAILING),
        (("pass", "pending"), CIStatus.PENDING),  # gh exits 8 here
    ],
)
async def test_checks(fake_gh: FakeGh, ref: ChangeRef, buckets: tuple[str, ...],
                      expected: CIStatus) -> None:
    fake_gh.scenario(prs=[PR], checks=checks(*buckets))
    forge = GithubForge()
    assert (await forge.find_change(ref)) is not None
    result = await forge.ci_status(ref)
    assert result.status == expected
    assert "job-0: pass (SUCCESS)" in result.output
    assert fake_gh.calls()[-1] == ["pr", "checks", "12", "--json", "name,state,bucket"]
    assert len(fake_gh.calls()) == 2  # the PR number was remembered, not listed again


async def test_no_checks_reported_counts_as_passing(fake_gh: FakeGh, ref: ChangeRef) -> None:
    fake_gh.scenario(prs=[PR])
    result = await GithubForge().ci_status(ref)
    assert result.status == CIStatus.PASSING
    assert "no checks" in result.output


async def test_diff_and_merge(fake_gh: FakeGh, ref: ChangeRef) -> None:
    diff = "diff --git a/a.txt b/a.txt\n+a.txt\n"
    fake_gh.scenario(prs=[PR], diffs={"12": diff})
    forge = GithubForge()
    assert await forge.diff(ref) == diff
    merged = await forge.merge(ref)
    assert merged.merged and "#12" in merged.detail
    assert fake_gh.calls()[-1] == ["pr", "merge", "12", "--merge"]


async def test_merge_conflict_is_reported(fake_gh: FakeGh, ref: ChangeRef) -> None:
    fake_gh.scenario(prs=[PR], merge={"12": "conflict"})
    result = await GithubForge().merge(ref)
    assert not result.merged
    assert "not mergeable" in result.detail


async def test_rate_limited_backs_off_without_calling_gh(fake_gh: FakeGh, ref: ChangeRef) -> None:
    fake_gh.scenario(prs=[PR], rate_limited_calls=2)
    clock = FakeClock()
    forge = GithubForge(clock=clock)

    with pytest.raises(ForgeRateLimited) as first:
        await forge.find_change(ref)
    assert first.value.retry_after_s == 60
    clock.now += 30
    with pytest.raises(ForgeRateLimited) as waiting:
        await forge.find_change(ref)
    assert waiting.value.retry_after_s == pytest.approx(30)
    assert len(fake_gh.calls()) == 1  # no gh call during the backoff

    clock.now += 31
    with pytest.raises(ForgeRateLimited) as second:  # still limited: the backoff doubles
        await forge.find_change(ref)
    assert second.value.retry_after_s == 120
    assert len(fake_gh.calls()) == 2

    clock.now += 121
    change = await forge.find_change(ref)
    assert change is not None and change.pr_number == 12
    assert len(fake_gh.calls()) == 3


async def test_budget_per_rolling_hour(fake_gh: FakeGh, ref: ChangeRef) -> None:
    fake_gh.scenario(prs=[PR])
    clock = FakeClock()
    forge = GithubForge(budget_per_hour=2, clock=clock)
    await forge.find_change(ref)
    clock.now += 600
    await forge.find_change(ref)
    assert forge.budget_remaining == 0
    with pytest.raises(ForgeBudgetExceeded) as spent:
        await forge.find_change(ref)
    assert spent.value.retry_after_s == pytest.approx(3000)
    assert len(fake_gh.calls()) == 2
    clock.now += 3000  # the first call leaves the window
    assert forge.budget_remaining == 1
    assert await forge.find_change(ref) is not None
    assert len(fake_gh.calls()) == 3


async def test_gh_missing_is_unavailable(ref: ChangeRef, tmp_path: Path) -> None:
    with pytest.raises(ForgeUnavailable):
        await GithubForge(gh=str(tmp_path / "no-gh-here")).find_change(ref)


async def test_unauthenticated_is_unavailable(fake_gh: FakeGh, ref: ChangeRef) -> None:
    fake_gh.scenario(unauthenticated=True)
    with pytest.raises(ForgeUnavailable, match="auth login"):
        await GithubForge().find_change(ref)


def test_build_forge_from_settings() -> None:
    from fleet_tui.config import ForgeSettings
    from fleet_tui.infra.forge_local import LocalForge
    from fleet_tui.infra.forges import build_forge

    assert isinstance(build_forge(ForgeSettings()), LocalForge)
    github = build_forge(ForgeSettings(kind="github", gh_budget_per_hour=5))
    assert isinstance(github, GithubForge) and github.budget_remaining == 5
