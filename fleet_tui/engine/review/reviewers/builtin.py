"""A deterministic reviewer: no model, no network. It blocks secrets and oversized diffs and
remarks on code changed without tests. Cheap enough to run on every change."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from fleet_tui.engine.review.reviewers.verdict import Verdict, VerdictKind
from fleet_tui.engine.kit.sanitize import SECRET_PATTERNS, looks_like_words

CODE_SUFFIXES = frozenset(
    {
        ".py", ".js", ".jsx", ".ts", ".tsx", ".go", ".rs", ".java", ".kt", ".rb", ".php",
        ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".swift", ".scala", ".ex", ".exs", ".sh",
    }
)
_TEST_PATH = re.compile(
    r"(^|/)(tests?|__tests__|spec|specs|testing)/|(^|/)test_[^/]+$|_test\.[a-z]+$"
    r"|\.(test|spec)\.[a-z]+$|(^|/)[^/]*Tests?\.[a-z]+$|(^|/)conftest\.py$"
)
_ASSIGNED_SECRET = re.compile(
    r"(?i)\b[\w.-]*(password|passwd|pwd|secret|api[_-]?key|apikey|token|access[_-]?key|private[_-]?key)"
    r"[\w.-]*[\"']?\s*[:=]\s*[\"']([^\"'\s]{6,})[\"']"
)
_LONG_ASSIGNED = re.compile(r"[:=]\s*[\"']?([A-Za-z0-9+/=_-]{40,})")
# Values that are obviously not real secrets (placeholders, lookups, templates).
_PLACEHOLDER = re.compile(
    r"(?i)example|placeholder|changeme|dummy|fake|redacted|xxxx|your[_-]|<|\$\{|\{\{|%\(|\*{3}|os\.environ|getenv"
)
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")


@dataclass
class _FileChange:
    path: str
    added: list[tuple[int, str]] = field(default_factory=list)
    removed: int = 0


def parse_diff(diff: str) -> list[_FileChange]:
    """Files of a unified diff with their added lines (new line numbers) and removal counts."""
    files: list[_FileChange] = []
    current: _FileChange | None = None
    old_path: str | None = None
    line_no = 0
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            current, old_path = None, None
        elif line.startswith("--- "):
            old_path = _strip_prefix(line[4:])
        elif line.startswith("+++ "):
            new_path = _strip_prefix(line[4:])
            path = old_path if new_path == "/dev/null" and old_path else new_path
            current = _FileChange(path)
            files.append(current)
        elif (match := _HUNK.match(line)) and current is not None:
            line_no = int(match.group(1))
        elif current is not None and line.startswith("+"):
            current.added.append((line_no, line[1:]))
            line_no += 1
        elif current is not None and line.startswith("-"):
            current.removed += 1
        elif current is not None and not line.startswith("\\"):
            line_no += 1
    return files


def _strip_prefix(path: str) -> str:
    path = path.split("\t", 1)[0].strip()
    return path[2:] if path[:2] in ("a/", "b/") else path


def is_test_path(path: str) -> bool:
    return bool(_TEST_PATH.search(path))


def is_code_path(path: str) -> bool:
    return PurePosixPath(path).suffix.lower() in CODE_SUFFIXES and not is_test_path(path)


def find_secrets(text: str) -> str | None:
    """The kind of secret an added line seems to carry, or None."""
    for pattern in SECRET_PATTERNS:
        if pattern.search(text):
            return "a credential"
    match = _ASSIGNED_SECRET.search(text)
    if match and not _PLACEHOLDER.search(match.group(2)):
        return f"a hard-coded {match.group(1).lower()}"
    match = _LONG_ASSIGNED.search(text)
    if match and not looks_like_words(match.group(1)) and not _PLACEHOLDER.search(match.group(1)):
        return "a secret-looking string"
    return None


class BuiltinReviewer:
    def __init__(self, focus: str = "security", max_diff_lines: int = 1500, name: str = "builtin") -> None:
        self.focus = focus
        self.max_diff_lines = max_diff_lines
        self.name = name

    def review(self, diff: str) -> Verdict:
        files = parse_diff(diff)
        blocking: list[str] = []
        notes: list[str] = []
        for change in files:
            for line_no, text in change.added:
                kind = find_secrets(text)
                if kind:
                    # never echo the value itself: the comment names the place only
                    blocking.append(f"{change.path}:{line_no}: {kind} is added; use the secrets provider")
        size = sum(len(f.added) + f.removed for f in files)
        if size > self.max_diff_lines:
            blocking.append(
                f"the diff changes {size} lines, over the limit of {self.max_diff_lines}; split the change"
            )
        code = [f.path for f in files if is_code_path(f.path)]
        if code and not any(is_test_path(f.path) for f in files):
            notes.append("source changed without tests: " + ", ".join(code[:10]))
        if not files and diff.strip():
            notes.append("the diff could not be parsed as a unified diff")
        verdict: VerdictKind = "request_changes" if blocking else ("comment" if notes else "approve")
        return Verdict(self.name, self.focus, verdict, blocking + notes)
