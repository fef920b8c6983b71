"""Why an agent run failed, read from the agent's own output (ANSI-stripped text).

Each reason asks for a different response: ``auth`` (not logged in, bad key) and
``cli_changed`` (a flag the CLI no longer accepts) need a person and are not retried the usual
way (cli_changed never); ``api_unavailable`` (model API unreachable or 5xx) counts against the
model's breaker; ``usage_limited`` waits for the reset time without spending the retry budget;
``permission_denied`` (the sandbox or permission policy refused a step) names what was refused.
Anything else stays ``agent_exit`` / ``no_change``. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, UTC

AUTH = "auth"
API_UNAVAILABLE = "api_unavailable"
USAGE_LIMITED = "usage_limited"
PERMISSION_DENIED = "permission_denied"
CLI_CHANGED = "cli_changed"
REASONS = (CLI_CHANGED, AUTH, USAGE_LIMITED, API_UNAVAILABLE, PERMISSION_DENIED)
# set by the conductor, not read from output: the agent rewrote its worktree's links to the
# repository (SECURITY.md); its work is bundled, and no policy runs it again
TAMPERED = "tampered"
# set by the conductor: the task's worktree lies outside this conductor's worktree base (made
# by a conductor with another data directory), so nothing here may touch or run it again
WORKTREE_ELSEWHERE = "worktree_elsewhere"
NOT_RETRIED = frozenset({CLI_CHANGED, TAMPERED, WORKTREE_ELSEWHERE})
WHY_NOT_RETRIED = {CLI_CHANGED: "the agent CLI refused its flags",
                   TAMPERED: "the agent tampered with its worktree's git links",
                   WORKTREE_ELSEWHERE: "its worktree lies under another conductor's data directory"}
USAGE_LIMIT_DEFAULT_WAIT_S = 15 * 60  # no reset time printed: try again after this

_I = re.IGNORECASE
PATTERNS: dict[str, list[re.Pattern[str]]] = {
    CLI_CHANGED: [re.compile(p, _I) for p in (
        r"unexpected argument '", r"unknown option '", r"unknown arguments?:", r"unrecognized arguments?:",
        r"error: unknown (?:option|command|flag)", r"invalid values?:\s*argument:",
        r"error: invalid value '.*' for '--",
        r"not running in a trusted directory",  # gemini without --skip-trust (exit 55)
        # a CLI that answers an unknown flag with its own help (opencode's yargs, commander)
        r"^\s*-h, --help\s+(?:show|display|print) help",
    )],
    AUTH: [re.compile(p, _I) for p in (
        r"invalid x-api-key", r"invalid api key", r"incorrect api key", r"api key not valid",
        r"authentication_error", r"not logged in", r"please run /login", r"missing api key",
        r"\b401\b[^\n]{0,80}(?:unauthori[sz]ed|auth)", r"(?:unauthori[sz]ed|auth)[^\n]{0,80}\b401\b",
        r"invalid_api_key", r"API_KEY_INVALID", r"no api key", r"login required",
        r"invalid auth method selected", r"UNAUTHENTICATED",
    )],
    USAGE_LIMITED: [re.compile(p, _I) for p in (
        r"usage limit", r"rate[ _]limit", r"\b429\b", r"quota exceeded", r"exceeded your (?:current )?quota",
        r"RESOURCE_EXHAUSTED", r"limit reached", r"too many requests", r"insufficient_quota",
    )],
    API_UNAVAILABLE: [re.compile(p, _I) for p in (
        r"(?:status|error|http|api)[^\n]{0,24}\b50[0234]\b", r"\b50[0234]\b[^\n]{0,24}(?:error|server|gateway|unavailable)",
        r"overloaded", r"service unavailable", r"bad gateway", r"internal server error",
        r"ECONNREFUSED", r"ECONNRESET", r"ENOTFOUND", r"connection (?:error|refused|reset)",
        r"fetch failed", r"stream disconnected", r"could not connect", r"network error",
        r"error sending request", r"api_error", r"UNAVAILABLE",
    )],
    PERMISSION_DENIED: [re.compile(p, _I) for p in (
        r"^\[fleet\] denied ", r"permission denied", r"requires approval", r"was blocked by",
        r"not allowed by (?:the )?(?:permission|sandbox)", r"permission to use \w+ has been denied",
        r"read-only file system", r"sandbox (?:denied|blocked)",
    )],
}
_EPOCH = re.compile(r"limit reached\|(\d{10})")  # claude: "Claude AI usage limit reached|1760000000"
_ISO = re.compile(r"(?:reset|retry|again)[^\n]{0,40}?(\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d)?(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)", _I)
_IN = re.compile(r"(?:reset|retry|again)[^\n]{0,30}?\bin\s+(\d+(?:\.\d+)?)\s*(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h)\b", _I)
_AFTER = re.compile(r"retry[- _]after[\"':\s]+(\d+)", _I)
_UNITS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class AgentFailure:
    reason: str
    evidence: str  # the line that decided it, shortened
    retry_at: datetime | None = None  # usage_limited: when the limit resets


def reset_time(text: str, now: datetime | None = None) -> datetime | None:
    """When a usage limit resets, if the output says (epoch, ISO time, "in N minutes")."""
    now = now or datetime.now(UTC)
    if m := _EPOCH.search(text):
        return datetime.fromtimestamp(int(m.group(1)), UTC)
    if m := _ISO.search(text):
        try:
            when = datetime.fromisoformat(m.group(1).replace("Z", "+00:00"))
            return when if when.tzinfo else when.replace(tzinfo=UTC)
        except ValueError:
            pass
    if m := _IN.search(text):
        return now + timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)[0].lower()])
    if m := _AFTER.search(text):
        return now + timedelta(seconds=int(m.group(1)))
    return None


def classify_output(text: str, now: datetime | None = None) -> AgentFailure | None:
    """The first reason (in REASONS order) whose pattern matches a line of the output."""
    lines = text.splitlines()
    for reason in REASONS:
        for line in lines:
            if any(p.search(line) for p in PATTERNS[reason]):
                retry_at = None
                if reason == USAGE_LIMITED:
                    now = now or datetime.now(UTC)
                    retry_at = reset_time(text, now) or now + timedelta(seconds=USAGE_LIMIT_DEFAULT_WAIT_S)
                return AgentFailure(reason, line.strip()[:300], retry_at)
    return None
