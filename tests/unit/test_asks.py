"""What an agent asked a person for (from the launcher's summary lines) and the grants and
answers an operator may give back."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet_tui.domain.asks import Ask, asked_in, check_answer, check_grants, describe_asked, suggested_grant
from fleet_tui.domain.errors import ValidationFailed
from fleet_tui.infra.agent_streams import StreamReader
from fleet_tui.infra.agents import build_argv, builtin_profiles, takes_grants


def test_a_denial_in_claudes_result_event_becomes_an_ask_with_the_exact_rule() -> None:
    reader = StreamReader("claude")
    command = "curl -s http://127.0.0.1:9/ " + "x" * 300  # longer than a log line shows
    reader.feed('{"type": "result", "subtype": "success", "permission_denials": [{"tool_name": "Bash", '
                f'"tool_input": {{"command": "{command}"}}}}, {{"tool_name": "WebFetch", "tool_input": {{}}}}]}}')
    asks = asked_in("\n".join(reader.summary()))
    assert asks[0] == Ask("Bash", command, f"Bash({command})")
    assert asks[1].tool == "WebFetch"


@pytest.mark.parametrize(("tool", "target", "grant"), [
    ("Bash", "make lint", "Bash(make lint)"),
    ("Bash", "echo a,b", "Bash(echo:*)"),  # --allowedTools splits at commas: the program, by prefix
    ("Bash", "curl " + "y" * 500 + "…", "Bash(curl:*)"),  # shortened: the exact rule is unknown
    ("WebFetch", "", "WebFetch"),
])
def test_the_suggested_grant_is_the_narrowest_rule_that_fits(tool: str, target: str, grant: str) -> None:
    assert suggested_grant(tool, target) == grant


@pytest.mark.parametrize("rule", ["Bash(a,b)", "Bash(x\ny)", "-rf", "", "Bash(" + "z" * 500 + ")"])
def test_a_grant_that_is_not_a_rule_is_refused_naming_the_field(rule: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_grants([rule])
    assert refused.value.field == "allow"


def test_answers_are_one_non_empty_text_of_bounded_size() -> None:
    assert check_answer("  yes, use sqlite \n") == "yes, use sqlite"
    for bad in ("  ", "a" * 8001):
        with pytest.raises(ValidationFailed):
            check_answer(bad)
    assert describe_asked([{"tool": "Bash", "target": "make"}, {"tool": "WebFetch", "target": ""}]) == "Bash: make; WebFetch"


def test_granted_rules_join_claudes_allowed_tools_in_the_command_and_on_resume() -> None:
    claude = builtin_profiles()["claude"]
    assert takes_grants(claude) and not takes_grants(builtin_profiles()["codex"])
    for resume in (False, True):
        argv = build_argv(claude, model=None, prompt_file=None, workdir=Path("/w"), resume=resume,
                          test_command="make test", granted=["Bash(make lint)"])
        rules = argv[argv.index("--allowedTools") + 1: argv.index("--settings")]
        assert rules[-1] == "Bash(make lint)" and "Bash(git commit:*)" in rules
        assert "{granted_tools}" not in " ".join(build_argv(claude, model=None, prompt_file=None, workdir=Path("/w"),
                                                            resume=resume))
