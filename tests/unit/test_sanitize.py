"""Sanitizer and failure capture: what must go, and the ordinary code that must stay."""

from __future__ import annotations

import base64
import os
import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from fleet_tui.engine.kit.sanitize import (
    DIFF_LIMIT,
    OUTPUT_LIMIT,
    failure_context,
    is_oom,
    redact_secrets,
    sanitize,
)

WT = Path("/work/worktrees/task-42")

ORDINARY_CODE = '''\
from __future__ import annotations

import re
from pathlib import Path

ROUTE = "/api/fleet/tasks/{task_id}"
URL = "https://example.com/docs/getting-started"


class ThisIsAVeryLongCamelCaseClassNameForTesting123:
    def test_that_the_conductor_retries_when_the_agent_crashes_v2(self) -> None:
        ratio = total / count  # plain division
        path = Path("src/fleet_tui/engine/review/reviewers/builtin_reviewer_module.py")
        sha_name = "test_sha256_of_identical_inputs_is_identical"
        return {"status": "production", "ok": a // b}
'''


def test_ordinary_code_is_untouched() -> None:
    env = {"APP_ENV": "production", "TERM": "xterm-256color", "HOME": "/home/dev"}
    assert sanitize(ORDINARY_CODE, worktree=WT, env=env) == ORDINARY_CODE


def test_env_values_are_replaced_by_their_name() -> None:
    env = {"OPENAI_API_KEY": "sk-live-12345678", "DB_PASS": "hunter2!", "SHORT": "abc"}
    out = sanitize("key=sk-live-12345678 pw=hunter2! x=abc", env=env)
    assert out == "key=«env:OPENAI_API_KEY» pw=«env:DB_PASS» x=abc"


def test_sensitive_names_redact_even_short_values() -> None:
    assert sanitize("token is zq9!", env={"API_TOKEN": "zq9!"}) == "token is «env:API_TOKEN»"


def test_default_env_is_os_environ(monkeypatch) -> None:
    monkeypatch.setenv("FLEET_TEST_SECRET_VALUE", "Xy7-not-a-word-9Q")
    assert "Xy7-not-a-word-9Q" not in sanitize("leaked Xy7-not-a-word-9Q here")


def test_paths_inside_worktree_become_relative_outside_become_placeholder() -> None:
    text = (
        f"File \"{WT}/src/app.py\", line 3\n"
        f"cwd {WT}\n"
        "File \"/usr/lib/python3.11/json/decoder.py\", line 1\n"
        "config at /home/alice/.config/fleet/secrets.toml and ~/notes.txt\n"
        "C:\\Users\\alice\\key.pem\n"
        f"sibling {WT}-other/file.py"
    )
    out = sanitize(text, worktree=WT, env={})
    assert 'File "src/app.py", line 3' in out
    assert "cwd ." in out
    assert "/usr/lib" not in out and "alice" not in out and "notes.txt" not in out
    assert out.count("«path»") == 5  # usr, home, ~, C:\, and the sibling worktree


def test_resolved_worktree_form_is_recognised(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    out = sanitize(f"{real}/a.py and {link}/b.py", worktree=link, env={})
    assert out == "a.py and b.py"


def test_long_secret_like_runs_are_removed() -> None:
    token = base64.b64encode(bytes(range(40))).decode()
    hex_key = "a3f9" * 11
    out = sanitize(f"auth={token}\nsha {hex_key}\n", env={})
    assert token not in out and hex_key not in out
    assert out.count("«secret»") == 2


def test_known_token_shapes_are_removed_at_any_length() -> None:
    text = (
        "aws AKIAIOSFODNN7EXAMPLE\n"
        "gh ghp_abcdefghijklmnopqrstuvwxyz0123\n"
        "-----BEGIN RSA PRIVATE KEY-----\nMIIabc\n-----END RSA PRIVATE KEY-----\n"
        "Authorization: Bearer abc.def.ghi-jkl_mnopqrs\n"
    )
    out = redact_secrets(text)
    for leaked in ("AKIAIOSFODNN7EXAMPLE", "ghp_abc", "MIIabc", "abc.def.ghi"):
        assert leaked not in out
    assert out.count("«secret»") == 4


def test_random_base64_of_40_plus_chars_never_survives() -> None:
    # Seeded, not hypothesis: the rule is a heuristic with a measured miss rate near 5e-5,
    # so a fixed sample keeps the test deterministic while still able to fail.
    rng = random.Random(2024)
    for i in range(3000):
        encode = base64.b64encode if i % 2 else base64.urlsafe_b64encode
        token = encode(rng.randbytes(rng.randint(30, 90))).decode()
        out = sanitize(f'API = "{token}"', env={})
        assert token not in out, token


# Ordinary words (a vowel in every few letters), some with a version suffix.
WORDS = ["retry", "task", "agent", "fleet", "model", "review", "handler2", "Request", "JSON", "Config"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=12), st.sampled_from(["_", "/", ""]))
def test_identifiers_made_of_words_survive(words: list[str], sep: str) -> None:
    ident = sep.join(words)
    assert sanitize(ident, env={}) == ident


def test_capture_failure_truncates_and_sanitizes() -> None:
    rng = random.Random(0)
    diff = f"error in {WT}/src/a.py\n" + "".join(f"+line {i}\n" for i in range(1000))
    secret = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789") for _ in range(48))
    error = "x" * 10_000 + f"\nTraceback: {secret} in /home/bob/lib.py\nboom"
    ctx = failure_context(
        diff=diff,
        modified_files=[f"{WT}/src/a.py", "/etc/hosts"],
        error_output=error,
        exit_code=1,
        ci_output="FAILED tests/test_a.py::test_x\n",
        review_comments=["use a constant for /home/bob/x"],
        worktree=WT,
        env={"SERVICE_TOKEN": "t0k3n-value-1"},
    )
    assert ctx["diff"].startswith("error in src/a.py")
    assert ctx["diff_truncated"] is True
    assert len(ctx["diff"]) <= DIFF_LIMIT + len("\n[... truncated]")
    assert ctx["modified_files"] == ["src/a.py", "«path»"]
    assert ctx["error_output"].endswith("«secret» in «path»\nboom")
    assert len(ctx["error_output"]) <= OUTPUT_LIMIT + len("[truncated ...]\n")
    assert ctx["exit_code"] == 1 and ctx["oom"] is False
    assert ctx["ci_output"] == "FAILED tests/test_a.py::test_x\n"
    assert ctx["review_comments"] == ["use a constant for «path»"]


def test_capture_failure_drops_env_values_everywhere() -> None:
    env = {"STRIPE_SECRET": "rk_live_abcdef12"}
    ctx = failure_context(diff="+k = 'rk_live_abcdef12'", error_output="rk_live_abcdef12", env=env)
    assert "rk_live" not in repr(ctx)


def test_oom_detection() -> None:
    assert is_oom(137)
    assert is_oom(1, "fatal: Out of memory, malloc failed")
    assert is_oom(None, "Container was OOMKilled")
    assert not is_oom(1, "AssertionError: 1 != 2")
    assert not is_oom(0)
    assert failure_context(exit_code=137)["oom"] is True


def test_sanitize_is_idempotent_on_its_output() -> None:
    text = f"{WT}/a.py /home/x/y {base64.b64encode(os.urandom(40)).decode()}"
    once = sanitize(text, worktree=WT, env={})
    assert sanitize(once, worktree=WT, env={}) == once
