"""Failure reasons read from what real CLIs print (lines as seen from the pinned versions)."""

from __future__ import annotations

from datetime import datetime, timedelta, UTC

import pytest

from fleet_tui.domain.agent_failures import classify_output, reset_time

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "reason"), [
    ("error: unexpected argument '--full-auto' found\n\nUsage: codex exec [OPTIONS] [PROMPT]", "cli_changed"),
    ("error: unknown option '--removed-in-this-version'", "cli_changed"),
    ("opencode run [message..]\n\nOptions:\n  -h, --help         show help    [boolean]", "cli_changed"),
    ('[fleet] error Failed to authenticate. API Error: 401 {"type":"error","error":{"type":"authentication_error"}}', "auth"),
    ("Incorrect API key provided: sk-test***", "auth"),
    ("[fleet] error API Error: Request rejected (429) · Usage limit reached", "usage_limited"),
    ("API Error: 503 Service Unavailable", "api_unavailable"),
    ("error: stream disconnected before completion: error sending request", "api_unavailable"),
    ("[fleet] denied Bash: curl https://example.invalid", "permission_denied"),
    ("added 500 lines to the changelog", None),
    ("all good", None),
])
def test_reasons(text: str, reason: str | None) -> None:
    found = classify_output(text, NOW)
    assert (found.reason if found else None) == reason


def test_a_usage_limit_carries_its_reset_time() -> None:
    assert reset_time("Usage limit reached; the limit resets at 2026-12-06T13:30:00Z", NOW) == \
        datetime(2026, 12, 6, 13, 30, tzinfo=UTC)
    assert reset_time("Claude AI usage limit reached|1796558400", NOW) == datetime.fromtimestamp(1796558400, UTC)
    assert reset_time("rate limited, try again in 20 minutes", NOW) == NOW + timedelta(minutes=20)
    found = classify_output("429 Too Many Requests", NOW)
    assert found is not None and found.retry_at == NOW + timedelta(minutes=15)  # none printed: a default wait


def test_a_run_without_a_reported_cost_is_priced_from_its_tokens() -> None:
    from fleet_tui.domain.prices import priced_cost

    # 1M input of which 400k cached, 100k output at gpt-5-codex list price
    assert priced_cost("gpt-5-codex", input_tokens=1_000_000, output_tokens=100_000,
                       cached_tokens=400_000) == round(0.6 * 1.25 + 0.4 * 0.125 + 0.1 * 10.0, 6)
    assert priced_cost("openai/gpt-5", input_tokens=10, output_tokens=0) is not None  # provider prefix
    assert priced_cost("some-local-model", input_tokens=10, output_tokens=10) is None
    assert priced_cost("gpt-5", input_tokens=None, output_tokens=10) is None
