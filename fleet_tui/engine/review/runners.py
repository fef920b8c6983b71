"""The reviewer kinds of the pipeline behind one call, `await runner.review(diff, task)`:
a built-in deterministic check, an agent profile run headless on the diff (prompt on
stdin or in a file, never in argv, never through a shell), or a hosted model API.
None of them raises: whatever goes wrong becomes a "comment" verdict carrying the error."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from collections.abc import Awaitable, Callable

from fleet_tui.config import ReviewerSpec
from fleet_tui.domain.models import TaskRecord
from fleet_tui.engine.review.reviewers.builtin import BuiltinReviewer, find_secrets, is_code_path, is_test_path, parse_diff
from fleet_tui.engine.review.reviewers.verdict import Verdict, parse_verdict_text
from fleet_tui.engine.kit.sanitize import sanitize

if TYPE_CHECKING:
    from fleet_tui.infra.agents import AgentProfile
    from fleet_tui.infra.secrets import SecretsProvider

MAX_REVIEW_DIFF_CHARS = 120_000
BASE_ENV_NAMES = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
HTTP_KEY_ENV = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY", "gemini": "GEMINI_API_KEY"}
Audit = Callable[[TaskRecord, str, dict[str, Any]], Awaitable[None]]

REVIEW_INSTRUCTIONS = (
    "You are reviewing a change made by a coding agent. Your focus: {focus}. Look for problems "
    "within that focus only. Answer with one JSON object and nothing else: "
    '{{"verdict": "approve" | "request_changes" | "comment", "comments": ["file:line: what and why"]}}. '
    "Use request_changes only for problems that must be fixed before merging. Do not modify any file."
)


class ReviewRunner(Protocol):
    name: str
    focus: str

    async def review(self, diff: str, task: TaskRecord) -> Verdict: ...


def review_prompt(spec: ReviewerSpec, task: TaskRecord, diff: str) -> str:
    """What an agent reviewer reads: instructions, the task, the diff; sanitized."""
    clean_diff = sanitize(diff[:MAX_REVIEW_DIFF_CHARS], worktree=task.worktree_path)
    parts = [
        spec.preamble.strip(),
        REVIEW_INSTRUCTIONS.format(focus=spec.focus),
        f"Task the change was made for ({task.task_type}):\n{sanitize(task.description.strip())}",
        f"Diff to review:\n```diff\n{clean_diff}\n```",
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


class FocusedBuiltinReviewer:
    """security: secrets block; logic: oversized diffs block, code without tests comments;
    any other focus runs every built-in check."""

    def __init__(self, name: str, focus: str, max_diff_lines: int = 1500) -> None:
        self.name = name
        self.focus = focus
        self.max_diff_lines = max_diff_lines

    async def review(self, diff: str, task: TaskRecord) -> Verdict:
        if self.focus not in ("security", "logic"):
            return BuiltinReviewer(self.focus, self.max_diff_lines, self.name).review(diff)
        files = parse_diff(diff)
        blocking: list[str] = []
        notes: list[str] = []
        if self.focus == "security":
            for change in files:
                for line_no, text in change.added:
                    kind = find_secrets(text)
                    if kind:  # the place only, never the value
                        blocking.append(f"{change.path}:{line_no}: {kind} is added; use the secrets provider")
        else:
            size = sum(len(f.added) + f.removed for f in files)
            if size > self.max_diff_lines:
                blocking.append(f"the diff changes {size} lines, over the limit of {self.max_diff_lines}; "
                                "split the change")
            code = [f.path for f in files if is_code_path(f.path)]
            if code and not any(is_test_path(f.path) for f in files):
                notes.append("source changed without tests: " + ", ".join(code[:10]))
            if not files:
                notes.append("the change has no diff to review" if not diff.strip()
                              else "the diff could not be parsed as a unified diff")
        kind = "request_changes" if blocking else ("comment" if notes else "approve")
        return Verdict(self.name, self.focus, kind, blocking + notes)  # type: ignore[arg-type]


class AgentReviewer:
    """An agent profile run headless in a scratch directory (not the worktree: a reviewer
    must not edit the change), with only its profile's secrets in the environment."""

    def __init__(self, spec: ReviewerSpec, *, profile: AgentProfile, secrets: SecretsProvider, timeout_s: float,
                 audit: Audit) -> None:
        self.spec = spec
        self.name = spec.label
        self.focus = spec.focus
        self.profile = profile
        self.secrets = secrets
        # the pipeline's timeout governs (it stops the run); this is the process's own net
        self.timeout_s = spec.timeout_s or timeout_s + 60
        self._audit = audit

    async def review(self, diff: str, task: TaskRecord) -> Verdict:
        from fleet_tui.infra import proc
        from fleet_tui.infra.agents import build_argv, task_env

        prompt = review_prompt(self.spec, task, diff)
        scratch = Path(tempfile.mkdtemp(prefix="fleet-review-"))
        try:
            prompt_file = None
            if self.profile.prompt_via == "file":
                prompt_file = scratch / "review-prompt.txt"
                prompt_file.write_text(prompt, encoding="utf-8")
            argv = build_argv(self.profile, model=self.spec.model, prompt_file=prompt_file, workdir=scratch)
            granted = self.secrets.issue(self.profile, task.id)
            if granted:
                await self._audit(task, "secrets_issued", {"names": sorted(granted), "reviewer": self.name})
            # the profile's fixed values too (telemetry and update checks off); its own {task_id}
            # so a CLI's per-task state (opencode's database) is not the agent's
            env = ({k: os.environ[k] for k in BASE_ENV_NAMES if os.environ.get(k)}
                   | task_env(self.profile, f"review-{task.id}") | granted)
            try:
                result = await proc.run(argv, cwd=scratch, timeout_s=self.timeout_s, env=env,
                                        stdin=prompt.encode() if prompt_file is None else b"")
            except proc.ProcTimeout:
                return Verdict.failed(self.name, self.focus, f"timeout after {self.timeout_s:g}s")
            except OSError as exc:
                return Verdict.failed(self.name, self.focus, f"could not run {argv[0]}: {exc.strerror or exc}")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        parsed = parse_verdict_text(result.stdout)
        error = parsed.error
        if not result.ok and error:
            error = f"exit {result.returncode}: {error}"
        return Verdict(self.name, self.focus, parsed.verdict, parsed.comments, error)


class HttpSpecReviewer:
    """A hosted model API; the key is issued by the secrets provider at call time."""

    def __init__(self, spec: ReviewerSpec, *, secrets: SecretsProvider, timeout_s: float, audit: Audit) -> None:
        from fleet_tui.engine.review.reviewers.http import make_http_reviewer

        self.spec = spec
        self.name = spec.label
        self.focus = spec.focus
        self.key_env = spec.key_env or HTTP_KEY_ENV.get(spec.provider or "", "")
        self.secrets = secrets
        self._audit = audit
        self._task_id = ""
        self.http = make_http_reviewer(
            spec.provider or "", spec.model or "", self._key, base_url=spec.base_url,
            timeout_s=min(spec.timeout_s or timeout_s, 300.0))

    def _key(self) -> str | None:
        holder = _EnvHolder(f"reviewer-{self.spec.provider}", [self.key_env] if self.key_env else [])
        return self.secrets.issue(holder, self._task_id).get(self.key_env)

    async def review(self, diff: str, task: TaskRecord) -> Verdict:
        self._task_id = task.id
        if self.key_env:
            await self._audit(task, "secrets_issued", {"names": [self.key_env], "reviewer": self.name})
        verdict = await self.http.review(diff, focus=self.focus, task_description=task.description)
        return Verdict(self.name, self.focus, verdict.verdict, verdict.comments, verdict.error)


class _EnvHolder:
    def __init__(self, name: str, env_allow: list[str]) -> None:
        self.name = name
        self.env_allow = env_allow


class MissingReviewer:
    """A configured reviewer that cannot run here (unknown profile or provider): it counts
    as a comment, never as an approval and never as a block."""

    def __init__(self, spec: ReviewerSpec, why: str) -> None:
        self.name = spec.label
        self.focus = spec.focus
        self.why = why

    async def review(self, diff: str, task: TaskRecord) -> Verdict:
        return Verdict.failed(self.name, self.focus, f"reviewer missing: {self.why}")


def make_runner(spec: ReviewerSpec, *, profile_for: Callable[[str | None], AgentProfile], secrets: SecretsProvider,
                timeout_s: float, audit: Audit,
                max_diff_lines: int = 1500) -> ReviewRunner:
    from fleet_tui.domain.errors import ValidationFailed

    if spec.kind == "builtin":
        return FocusedBuiltinReviewer(spec.label, spec.focus, max_diff_lines)
    if spec.kind == "agent":
        try:
            return AgentReviewer(spec, profile=profile_for(spec.profile), secrets=secrets, timeout_s=timeout_s,
                                 audit=audit)
        except ValidationFailed as exc:
            return MissingReviewer(spec, exc.rule)
    try:
        return HttpSpecReviewer(spec, secrets=secrets, timeout_s=timeout_s, audit=audit)
    except ValueError as exc:
        return MissingReviewer(spec, str(exc))
