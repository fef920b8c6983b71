"""Make agent output safe to put back into a prompt or the registry.

Three things are removed: values of environment variables («env:NAME»), absolute paths
outside the task's worktree («path»; paths inside it become relative) and secret-looking
strings («secret»: runs of 40+ base64-ish characters, plus well-known token shapes).
Ordinary code must survive, so the 40+ rule spares runs that read as words (long
identifiers, relative paths): see looks_like_words.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Mapping

DIFF_LIMIT = 2000
OUTPUT_LIMIT = 4000  # error and CI output keep their tail: that is where the error is
COMMENT_LIMIT = 1000
MAX_COMMENTS = 20
MAX_FILES = 200
_PRECUT = 64_000  # bound the text before the regexes run; far above every final limit

# Environment values shorter than this are too likely to occur in ordinary text.
ENV_MIN_LEN = 8
# Values of these variables are not secrets and would mangle text if replaced (TERM,
# LANG...), or are paths that the path rule handles better (HOME, PWD...).
COMMON_ENV_NAMES = frozenset(
    {
        "PATH", "HOME", "PWD", "OLDPWD", "SHELL", "TERM", "LANG", "LANGUAGE", "USER",
        "LOGNAME", "HOSTNAME", "SHLVL", "TMPDIR", "TEMP", "TMP", "EDITOR", "VISUAL", "PAGER",
        "COLORTERM", "TERM_PROGRAM", "TERM_PROGRAM_VERSION", "TZ", "DISPLAY", "MAIL",
        "VIRTUAL_ENV", "PYTHONPATH", "_", "COLUMNS", "LINES", "PS1", "MANPATH",
    }
)
_COMMON_PREFIXES = ("LC_", "XDG_", "PYTEST_", "HYPOTHESIS_")
# Names that mark a value as secret whatever its shape (then 4 characters suffice).
_SENSITIVE_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|PRIVATE", re.I)
_PLAIN_VALUE = re.compile(r"[a-z][a-z_-]*|[0-9.]+|true|false|yes|no", re.I)

# Paths: only roots that name a filesystem, so that URL paths and API routes in code
# ("/api/v1/tasks") stay intact. The worktree's own root is added per call.
FS_ROOTS = frozenset(
    {
        "home", "Users", "root", "tmp", "var", "etc", "opt", "usr", "srv", "mnt", "media",
        "data", "work", "private", "nix", "proc", "sys", "dev", "run", "bin", "sbin", "lib",
        "lib64", "workspace", "app", "builds", "Volumes", "snap", "github", "runner",
    }
)
_PATH = re.compile(r"(?<![\w.~/:@-])/([A-Za-z0-9._@%+-]+)((?:/[A-Za-z0-9._@%+=,-]+)*)/?")
_HOME_PATH = re.compile(r"(?<![\w/])~/[A-Za-z0-9._@%+=,/-]+")
_WINDOWS_PATH = re.compile(r"(?<![\w])[A-Za-z]:\\[^\s'\"<>|]+")

# Well-known token shapes, caught whatever their length.
SECRET_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}\b"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}\b"),
    re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{16,}"),
)
_LONG_RUN = re.compile(r"[A-Za-z0-9+/=_-]{40,}")
_HEX = re.compile(r"[0-9a-fA-F]+")
_WORD_PIECE = re.compile(r"[A-Z]{2,}(?![a-z])|[A-Z]?[a-z]+|[0-9]+|[A-Z]")
_OOM_TEXT = re.compile(
    r"out of memory|OOMKilled|oom-kill|Killed process|MemoryError|cannot allocate memory"
    r"|heap out of memory|std::bad_alloc",
    re.I,
)


def looks_like_words(run: str) -> bool:
    """Identifiers and relative paths split into long pieces (words, numbers) with about a
    third vowels; random base64 splits into pieces of about two characters with a fifth
    vowels. Pure hex is never words. A random 40-character token passes for words with a
    probability of about 5e-5 (measured), the price of leaving ordinary code intact."""
    if _HEX.fullmatch(run) and any(c.isdigit() for c in run) and any(c.isalpha() for c in run):
        return False
    pieces = _WORD_PIECE.findall(run)
    if len(run) / max(1, len(pieces)) < 3.5:
        return False
    letters = [c for c in run if c.isalpha()]
    vowels = sum(c in "aeiouyAEIOUY" for c in letters)
    return vowels >= 0.25 * len(letters)


def redact_secrets(text: str) -> str:
    for pattern in SECRET_PATTERNS:
        text = pattern.sub("«secret»", text)
    return _LONG_RUN.sub(lambda m: m.group(0) if looks_like_words(m.group(0)) else "«secret»", text)


def _env_pairs(env: Mapping[str, str]) -> list[tuple[str, str]]:
    pairs = []
    for name, value in env.items():
        if not value or name in COMMON_ENV_NAMES or name.startswith(_COMMON_PREFIXES):
            continue
        sensitive = bool(_SENSITIVE_NAME.search(name))
        if len(value) < (4 if sensitive else ENV_MIN_LEN):
            continue
        if not sensitive and (value.startswith(("/", "~")) or _PLAIN_VALUE.fullmatch(value)):
            continue  # a path (handled by the path rule) or a plain word like "production"
        pairs.append((name, value))
    # Longest first, so that a value containing another is replaced whole.
    return sorted(pairs, key=lambda pair: -len(pair[1]))


def redact_env(text: str, env: Mapping[str, str]) -> str:
    for name, value in _env_pairs(env):
        if value in text:
            text = text.replace(value, f"«env:{name}»")
    return text


def redact_paths(text: str, worktree: Path | str | None) -> str:
    roots = set(FS_ROOTS)
    if worktree is not None:
        forms = {str(worktree).rstrip("/")}
        try:
            forms.add(str(Path(worktree).resolve()).rstrip("/"))
        except OSError:
            pass
        for form in sorted((f for f in forms if f), key=len, reverse=True):
            # inside the worktree: relative; the worktree itself: "."
            text = re.sub(r"(?<![\w./-])" + re.escape(form) + r"/(?=[\w.@%+-])", "", text)
            text = re.sub(r"(?<![\w./-])" + re.escape(form) + r"(?![\w.@%+/-])", ".", text)
            first = form.lstrip("/").split("/", 1)[0]
            if first:
                roots.add(first)

    def outside(match: re.Match[str]) -> str:
        return "«path»" if match.group(1) in roots else match.group(0)

    text = _PATH.sub(outside, text)
    text = _HOME_PATH.sub("«path»", text)
    return _WINDOWS_PATH.sub("«path»", text)


def sanitize(
    text: str,
    *,
    worktree: Path | str | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Environment values first (a secret value may contain '/'), then paths, then secrets."""
    if not text:
        return text
    text = redact_env(text, os.environ if env is None else env)
    text = redact_paths(text, worktree)
    return redact_secrets(text)


def _head(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    return text[:limit] + "\n[... truncated]", True


def _tail(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return "[truncated ...]\n" + text[-limit:]


def _precut_head(text: str) -> str:
    # Cut at a line break, so that no secret is split into a fragment below 40 characters.
    if len(text) <= _PRECUT:
        return text
    cut = text.rfind("\n", 0, _PRECUT)
    return text[: cut if cut > 0 else _PRECUT]


def _precut_tail(text: str) -> str:
    if len(text) <= _PRECUT:
        return text
    cut = text.find("\n", len(text) - _PRECUT)
    return text[cut + 1 if cut >= 0 else len(text) - _PRECUT :]


def is_oom(exit_code: int | None, text: str = "") -> bool:
    """Exit 137 (SIGKILL, what the OOM killer sends) or an out-of-memory message."""
    return exit_code == 137 or bool(text and _OOM_TEXT.search(text))


def failure_context(
    *,
    diff: str = "",
    modified_files: Iterable[str] = (),
    error_output: str = "",
    exit_code: int | None = None,
    ci_output: str = "",
    review_comments: Iterable[str] = (),
    worktree: Path | str | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The failure context a retry's prompt is built from, safe to store and to show."""

    def clean(text: str) -> str:
        return sanitize(text, worktree=worktree, env=env)

    diff_text, diff_truncated = _head(clean(_precut_head(diff or "")), DIFF_LIMIT)
    error_text = _tail(clean(_precut_tail(error_output or "")), OUTPUT_LIMIT)
    ci_text = _tail(clean(_precut_tail(ci_output or "")), OUTPUT_LIMIT)
    files = [clean(str(f)) for f in list(modified_files)[:MAX_FILES]]
    comments = [
        _head(clean(str(c)[:_PRECUT]), COMMENT_LIMIT)[0]
        for c in list(review_comments)[:MAX_COMMENTS]
    ]
    return {
        "diff": diff_text,
        "diff_truncated": diff_truncated,
        "modified_files": files,
        "error_output": error_text,
        "exit_code": exit_code,
        "ci_output": ci_text,
        "review_comments": comments,
        "oom": is_oom(exit_code, (error_output or "")[-_PRECUT:]),
    }
