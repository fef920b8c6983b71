"""Store-level errors, and the translation of PostgreSQL constraint violations into
ValidationFailed naming the field and the rule (so bad input never surfaces as SQL)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import asyncpg

from fleet_tui.domain.errors import DatabaseUnavailableError as DatabaseUnavailableError  # in the catalogue
from fleet_tui.domain.errors import ValidationFailed


# The connection went away (terminated backend, server restart, network, connect timeout),
# as opposed to an error of the query itself: worth trying again on a fresh connection.
CONNECTION_LOST: tuple[type[Exception], ...] = (
    OSError,  # TimeoutError included
    asyncpg.PostgresConnectionError,  # ConnectionDoesNotExistError: closed mid-operation
    asyncpg.AdminShutdownError,  # pg_terminate_backend, server shutdown
    asyncpg.CannotConnectNowError,  # server starting or stopping
    # the protocol lost track when the server cut it off mid-exchange (seen on the pool's
    # reset after pg_terminate_backend); the pool then terminates that connection
    asyncpg.InternalClientError,
)


def is_connection_lost(exc: BaseException | None) -> bool:
    """Also through the chain: a query cut off inside a transaction surfaces as the
    InterfaceError of the rollback on the closed connection, raised while handling it."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, CONNECTION_LOST):
            return True
        if isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def describe_failure(exc: BaseException) -> str:
    """A short reason for a database failure, fit for a log line or an HTTP body: its kind
    and first line, never a traceback or a URL with a password."""
    if isinstance(exc, DatabaseUnavailableError):
        return str(exc)
    if isinstance(exc, TimeoutError) and not str(exc):
        return "the database did not answer in time"
    cause = exc
    for _ in range(10):  # the connection error under a rollback's InterfaceError
        if isinstance(cause, CONNECTION_LOST) or cause.__cause__ is None and cause.__context__ is None:
            break
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    text = str(cause).strip().splitlines()[0][:200] if str(cause).strip() else ""
    return f"database unavailable ({type(cause).__name__}{': ' + text if text else ''})"


# constraint name -> (field, rule); names come from sql/NNN_*.sql
CONSTRAINT_RULES: dict[str, tuple[str, str]] = {
    "fleet_tasks_id_check": ("id", "must be 6-32 lowercase letters or digits"),
    "fleet_tasks_status_check": ("status", "must be one of the twelve task statuses"),
    "fleet_tasks_version_check": ("version", "must be >= 0"),
    "fleet_tasks_description_check": ("description", "must be 1-10000 characters"),
    "fleet_tasks_task_type_check": ("task_type", "must be bug_fix, feature, refactor, review or docs"),
    "fleet_tasks_runtime_check": ("runtime", "must be tmux or docker"),
    "fleet_tasks_priority_check": ("priority", "must be between 0 and 100"),
    "fleet_tasks_retry_count_check": ("retry_count", "must be >= 0"),
    "fleet_tasks_max_retries_check": ("max_retries", "must be >= 0"),
    "fleet_tasks_retry_budget_check": ("retry_count", "must not exceed max_retries"),
    "fleet_tasks_ci_status_check": ("ci_status", "must be pending, passing or failing"),
    "fleet_tasks_pr_number_check": ("pr_number", "must be a positive number"),
    "fleet_tasks_review_verdicts_check": ("review_verdicts", "must be a list"),
    "fleet_tasks_metadata_check": ("metadata", "must be an object"),
    "fleet_operators_tier_check": ("tier", "must be one of the five tiers"),
    "fleet_operators_id_check": ("operator_id", "must be 1-128 letters, digits or ._@:-"),
    "fleet_commands_verb_check": ("verb", "must be one of delete, diff, logs, merge, retry, spawn, stop"),
    "fleet_commands_task_id_check": ("task_id", "must be 6-32 lowercase letters or digits (empty for spawn)"),
    "fleet_commands_args_check": ("args", "must be an object"),
}


def as_validation_error(exc: asyncpg.PostgresError) -> ValidationFailed | None:
    """A ValidationFailed for a known CHECK/NOT NULL violation, else None."""
    name = getattr(exc, "constraint_name", None)
    if name in CONSTRAINT_RULES:
        return ValidationFailed(*CONSTRAINT_RULES[name])
    if isinstance(exc, asyncpg.NotNullViolationError):
        return ValidationFailed(getattr(exc, "column_name", None) or "value", "is required")
    return None


def redact_url(url: str) -> str:
    """The URL with its password replaced, safe for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


def describe_connect_error(url: str, exc: BaseException) -> str:
    """One line explaining why `url` could not be used, without the secret."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, (TimeoutError,)):
        reason = "timed out"
    return f"cannot use the database at {redact_url(url)}: {reason}"
