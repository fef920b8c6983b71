"""What an agent asked a person for, read from its structured stream, and what an operator
may give back: a permission granted for the task, or an answer.

A headless agent cannot ask anyone: claude in print mode denies every tool use its policy
does not allow and reports each denial in its result event (``permission_denials``), and
``opencode run`` rejects what its permission config says to ask about and reports the tool
call as rejected; the launcher writes them as ``[fleet] denied TOOL: TARGET`` lines
(infra/agent_streams.py). codex exec cannot ask (approvals off; "request_user_input is not
supported in exec mode") and gemini headless never offers a tool that would need a
confirmation (and with --approval-mode yolo none does). Such
a run did not fail on its own: it waits for a person (``needs_input``), who can grant the
permission for this task (``retry --allow RULE``) or answer (``answer TEXT``). Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from fleet_tui.domain.errors import ValidationFailed

DENIED_TAG = "[fleet] denied "
ASKED_KEY = "asked"  # failure_context: [Ask.to_dict(), ...] of the run that waits for a person
# Claude's permission rule: a tool name, optionally a specifier in parentheses. No comma
# (--allowedTools splits at commas) and no line break; a length a person can read.
GRANT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}(?:\([^\n\r,]{1,400}\))?\Z")
MAX_GRANTS = 20
MAX_ANSWER_CHARS = 8000
TRUNCATED = "…"  # agent_streams shortens long targets with it


@dataclass(frozen=True)
class Ask:
    tool: str
    target: str
    grant: str  # the narrowest rule that allows exactly this (a suggestion to the operator)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return f"{self.tool}: {self.target}" if self.target else self.tool


def suggested_grant(tool: str, target: str) -> str:
    """Exactly what was refused when it fits a rule; else the command's program, by prefix."""
    if not target:
        return tool
    if TRUNCATED not in target and GRANT_RE.match(f"{tool}({target})"):
        return f"{tool}({target})"
    program = target.split()[0] if target.split() else ""
    if tool == "Bash" and program and GRANT_RE.match(f"Bash({program}:*)"):
        return f"Bash({program}:*)"
    return tool


def asked_in(text: str) -> list[Ask]:
    """The permission requests the launcher's summary lines report, once each, in order."""
    asks: list[Ask] = []
    for line in text.splitlines():
        if not line.startswith(DENIED_TAG):
            continue
        tool, _, target = line[len(DENIED_TAG):].partition(": ")
        tool, target = tool.strip(), target.strip()
        if not tool:
            continue
        ask = Ask(tool, target, suggested_grant(tool, target))
        if ask not in asks:
            asks.append(ask)
    return asks


def describe_asked(asked: list[dict[str, Any]], limit: int = 300) -> str:
    """'Bash: curl -s ...; WebFetch' from the asks a failure context holds."""
    text = "; ".join(Ask(str(a.get("tool", "")), str(a.get("target", "")), "").describe() for a in asked)
    return text if len(text) <= limit else text[: limit - 1] + TRUNCATED


def check_grants(rules: list[str]) -> list[str]:
    """The rules as given, or ValidationFailed naming the rule that is not one."""
    if len(rules) > MAX_GRANTS:
        raise ValidationFailed("allow", f"at most {MAX_GRANTS} rules at once")
    for rule in rules:
        if not GRANT_RE.match(rule):
            raise ValidationFailed("allow", f"{rule[:80]!r} is not a permission rule like Bash(make test) "
                                            "or WebFetch (no commas, one line)")
    return rules


def check_answer(text: str) -> str:
    text = text.strip()
    if not text:
        raise ValidationFailed("text", "must not be empty")
    if len(text) > MAX_ANSWER_CHARS:
        raise ValidationFailed("text", f"must be at most {MAX_ANSWER_CHARS} characters")
    return text
