"""Text from agents, reviewers and users on its way to a terminal: escape sequences and
control characters removed, so what is shown cannot retitle the terminal, write its
clipboard or clear the screen. Newlines and tabs stay."""

from __future__ import annotations

import re

# CSI / OSC / two-character escapes, then stray control characters (keep tab and newline)
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C1 too: some terminals read \x9b as CSI


def strip_ansi(text: str) -> str:
    return _CONTROL.sub("", _ANSI.sub("", text))


def one_line(message: str, limit: int = 400) -> str:
    """An error message for a terminal or a log line: no escape sequences, no line breaks,
    and a long echoed value cut short."""
    text = " ".join(strip_ansi(message).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
