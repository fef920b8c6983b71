"""Review verdicts: the record, parsing a model's answer, and folding several into one outcome.

A reviewer that errors, answers nonsense or never answers counts as "comment": it neither
blocks a change nor approves it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple
from collections.abc import Iterable, Mapping, Sequence

VerdictKind = Literal["approve", "request_changes", "comment"]
Outcome = Literal["approved", "rejected", "commented"]
VERDICTS: tuple[VerdictKind, ...] = ("approve", "request_changes", "comment")
MAX_COMMENTS = 50
MAX_COMMENT_CHARS = 2000

_SYNONYMS: dict[str, VerdictKind] = {
    "approve": "approve",
    "approved": "approve",
    "lgtm": "approve",
    "accept": "approve",
    "request_changes": "request_changes",
    "changes_requested": "request_changes",
    "request_change": "request_changes",
    "reject": "request_changes",
    "rejected": "request_changes",
    "comment": "comment",
    "commented": "comment",
    "neutral": "comment",
}
_FENCE = re.compile(r"```(?:json|JSON)?\s*([\s\S]*?)```")


@dataclass
class Verdict:
    reviewer: str
    focus: str
    verdict: VerdictKind
    comments: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "reviewer": self.reviewer,
            "focus": self.focus,
            "verdict": self.verdict,
            "comments": list(self.comments),
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        kind = normalize_verdict(data.get("verdict"))
        return cls(
            reviewer=str(data.get("reviewer", "unknown")),
            focus=str(data.get("focus", "")),
            verdict=kind or "comment",
            comments=_clean_comments(data.get("comments")),
            error=data.get("error") if kind else (data.get("error") or "unknown verdict"),
        )

    @classmethod
    def failed(cls, reviewer: str, focus: str, error: str) -> Verdict:
        return cls(reviewer=reviewer, focus=focus, verdict="comment", comments=[], error=error)


class ParsedVerdict(NamedTuple):
    verdict: VerdictKind
    comments: list[str]
    error: str | None


def normalize_verdict(value: Any) -> VerdictKind | None:
    if not isinstance(value, str):
        return None
    key = re.sub(r"[\s-]+", "_", value.strip().lower())
    return _SYNONYMS.get(key)


def _clean_comments(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, (str, dict)):
        raw = [raw]
    comments: list[str] = []
    for item in list(raw)[:MAX_COMMENTS]:
        if isinstance(item, dict):
            # {"file": ..., "line": ..., "comment"/"message"/"body": ...}
            where = ":".join(str(item[k]) for k in ("file", "line") if item.get(k) is not None)
            body = item.get("comment") or item.get("message") or item.get("body") or ""
            text = f"{where}: {body}" if where else str(body or json.dumps(item))
        else:
            text = str(item)
        text = text.strip()
        if text:
            comments.append(text[:MAX_COMMENT_CHARS])
    return comments


def _json_objects(text: str) -> Iterable[dict[str, Any]]:
    """Every JSON object in the text: fenced blocks first, then any '{' that decodes."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for chunk in candidates:
        start = chunk.find("{")
        while start != -1:
            try:
                obj, _ = decoder.raw_decode(chunk, start)
            except json.JSONDecodeError:
                obj = None
            if isinstance(obj, dict):
                yield obj
            start = chunk.find("{", start + 1)


def parse_verdict_text(text: str) -> ParsedVerdict:
    """Extract {"verdict": ..., "comments": [...]} from a model's answer, tolerating code
    fences and prose around it. Unparsable answers become a comment carrying an error."""
    for obj in _json_objects(text or ""):
        if "verdict" not in obj:
            continue
        kind = normalize_verdict(obj.get("verdict"))
        comments = _clean_comments(obj.get("comments"))
        if kind is None:
            return ParsedVerdict("comment", comments, f"unknown verdict {str(obj.get('verdict'))[:40]!r}")
        return ParsedVerdict(kind, comments, None)
    excerpt = (text or "").strip()[:200]
    return ParsedVerdict("comment", [excerpt] if excerpt else [], "no JSON verdict in the answer")


@dataclass(frozen=True)
class ReviewOutcome:
    outcome: Outcome
    verdicts: list[Verdict]  # one per expected reviewer (missing ones as comment) + extras
    missing: list[str]
    approvals: int
    blocking_comments: list[str]  # comments of request_changes verdicts: they feed the retry

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "missing": list(self.missing),
            "approvals": self.approvals,
            "blocking_comments": list(self.blocking_comments),
        }


def aggregate(verdicts: Sequence[Verdict], expected_reviewers: Sequence[str] = ()) -> ReviewOutcome:
    """Any request_changes -> rejected; every expected reviewer (at least one) approved ->
    approved; anything else (comments, errors, missing reviewers) -> commented."""
    seen = {v.reviewer for v in verdicts}
    missing = [name for name in expected_reviewers if name not in seen]
    all_verdicts = list(verdicts) + [
        Verdict.failed(name, "", "reviewer did not answer") for name in missing
    ]
    blocking = [
        f"{v.reviewer}: {c}" for v in all_verdicts if v.verdict == "request_changes" for c in v.comments
    ]
    approvals = sum(1 for v in all_verdicts if v.verdict == "approve")
    if any(v.verdict == "request_changes" for v in all_verdicts):
        outcome: Outcome = "rejected"
    elif all_verdicts and approvals == len(all_verdicts):
        outcome = "approved"
    else:
        outcome = "commented"
    return ReviewOutcome(outcome, all_verdicts, missing, approvals, blocking)
