"""Secrets provider: each agent gets only the variables its profile names, every issuance
is audited by name (never by value), and a redaction helper keeps values out of logs."""

from __future__ import annotations

import os
from typing import Protocol
from collections.abc import Callable, Iterable, Mapping

REDACTED = "[REDACTED]"
MIN_REDACT_LEN = 4  # shorter values would blank out ordinary words


class HasEnvAllow(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def env_allow(self) -> list[str]: ...


AuditFn = Callable[[str, str, list[str]], None]  # (task_id, profile name, variable names)


class SecretsProvider:
    def __init__(self, source: Mapping[str, str] | None = None, audit: AuditFn | None = None) -> None:
        self._source = source if source is not None else os.environ
        self._audit = audit
        self._issued: set[str] = set()  # values handed out, for redact_issued

    def issue(self, profile: HasEnvAllow, task_id: str) -> dict[str, str]:
        """The profile's allowed variables that are set, and one audit entry of their names."""
        granted = {name: self._source[name] for name in profile.env_allow
                   if self._source.get(name)}
        self._issued.update(granted.values())
        if self._audit is not None:
            self._audit(task_id, profile.name, sorted(granted))
        return granted

    def redact_issued(self, text: str) -> str:
        """Redact every value this provider ever issued."""
        return redact(text, self._issued)


def redact(text: str, values: Iterable[str]) -> str:
    """Replace each secret value (longest first, so overlapping values vanish whole)."""
    for value in sorted({v for v in values if v and len(v) >= MIN_REDACT_LEN}, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text
