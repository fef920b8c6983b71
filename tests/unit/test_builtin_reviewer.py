"""Built-in deterministic reviewer, verdict parsing and aggregation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fleet_tui.engine.review.reviewers.builtin import BuiltinReviewer
from fleet_tui.engine.review.reviewers.verdict import Verdict, aggregate, parse_verdict_text
from fleet_tui.engine.review.reviewers.builtin import is_test_path, parse_diff


def make_diff(files: dict[str, list[str]]) -> str:
    out = []
    for path, lines in files.items():
        out += [
            f"diff --git a/{path} b/{path}",
            f"--- a/{path}",
            f"+++ b/{path}",
            f"@@ -10,2 +10,{len(lines) + 1} @@",
            " unchanged context",
            *[f"+{line}" for line in lines],
        ]
    return "\n".join(out) + "\n"


CLEAN = make_diff(
    {
        "src/app/export.py": ["def export_json(rows):", "    return json.dumps(rows)"],
        "tests/test_export.py": ["def test_export_json():", "    assert export_json([]) == '[]'"],
    }
)


def test_clean_change_with_tests_is_approved() -> None:
    verdict = BuiltinReviewer().review(CLEAN)
    assert verdict.verdict == "approve"
    assert verdict.comments == []
    assert (verdict.reviewer, verdict.focus) == ("builtin", "security")


def test_aws_key_is_blocked_with_file_and_line_and_no_value() -> None:
    diff = make_diff({"src/settings.py": ["REGION = 'eu-west-1'", "AWS_KEY = 'AKIAIOSFODNN7EXAMPLE'"], "tests/test_s.py": ["x = 1"]})
    verdict = BuiltinReviewer().review(diff)
    assert verdict.verdict == "request_changes"
    assert verdict.comments[0].startswith("src/settings.py:12:")
    assert "AKIA" not in " ".join(verdict.comments)


def test_other_secret_shapes_are_blocked() -> None:
    cases = [
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        'token = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"',
        'client = Client(api_key="sk-proj-abcdefghijklmnopqrstuv")',
        'password = "hunter2hunter2"',
        'SIGNING = "q8Zr3LmX0pWv7TbN2cYk5HsJ9fGdE1aQ4uRi6oPl"',
    ]
    for line in cases:
        verdict = BuiltinReviewer().review(make_diff({"app/conf.py": [line], "tests/test_conf.py": ["ok"]}))
        assert verdict.verdict == "request_changes", line


def test_placeholders_and_lookups_are_not_secrets() -> None:
    lines = [
        'password = os.environ["DB_PASSWORD"]',
        'api_key = "<your-api-key>"',
        'token = "${GITHUB_TOKEN}"',
        'path = "src/fleet_tui/engine/review/reviewers/builtin_reviewer_module.py"',
    ]
    verdict = BuiltinReviewer().review(make_diff({"app/conf.py": lines, "tests/test_conf.py": ["ok"]}))
    assert verdict.verdict == "approve", verdict.comments


def test_code_without_tests_is_a_comment() -> None:
    verdict = BuiltinReviewer().review(make_diff({"src/app/export.py": ["x = 1"], "README.md": ["docs"]}))
    assert verdict.verdict == "comment"
    assert "without tests" in verdict.comments[0] and "src/app/export.py" in verdict.comments[0]


def test_docs_only_change_needs_no_tests() -> None:
    assert BuiltinReviewer().review(make_diff({"docs/guide.md": ["hello"]})).verdict == "approve"


def test_oversized_diff_is_blocked() -> None:
    diff = make_diff({"src/big.py": [f"x{i} = {i}" for i in range(30)], "tests/test_big.py": ["ok"]})
    assert BuiltinReviewer(max_diff_lines=20).review(diff).verdict == "request_changes"
    assert BuiltinReviewer(max_diff_lines=100).review(diff).verdict == "approve"


def test_parse_diff_tracks_lines_and_deletions() -> None:
    diff = (
        "diff --git a/old.py b/old.py\n--- a/old.py\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n"
        "diff --git a/n.py b/n.py\n--- a/n.py\n+++ b/n.py\n@@ -5,3 +5,4 @@\n ctx\n-gone\n+new1\n ctx\n+new2\n"
    )
    files = parse_diff(diff)
    assert [f.path for f in files] == ["old.py", "n.py"]
    assert files[0].removed == 2
    assert files[1].added == [(6, "new1"), (8, "new2")]


def test_test_path_detection() -> None:
    for path in ["tests/a.py", "pkg/test_a.py", "x/a_test.go", "web/a.test.ts", "src/__tests__/a.js", "conftest.py"]:
        assert is_test_path(path), path
    for path in ["src/app.py", "src/contest.py", "latest/app.py"]:
        assert not is_test_path(path), path


# --- verdict parsing and aggregation ----------------------------------------------------------


def test_parse_plain_json() -> None:
    parsed = parse_verdict_text('{"verdict": "approve", "comments": []}')
    assert parsed == ("approve", [], None)


def test_parse_fenced_json_with_prose() -> None:
    text = 'Here is my review.\n```json\n{"verdict": "request_changes", "comments": ["a.py:3 leaks"]}\n```\nThanks!'
    assert parse_verdict_text(text) == ("request_changes", ["a.py:3 leaks"], None)


def test_parse_synonyms_and_structured_comments() -> None:
    text = 'Verdict follows {"verdict": "Changes Requested", "comments": [{"file": "a.py", "line": 3, "comment": "bug"}, "nit"]}'
    assert parse_verdict_text(text) == ("request_changes", ["a.py:3: bug", "nit"], None)


def test_parse_skips_objects_without_verdict() -> None:
    text = 'Example: {"x": 1}. Answer: {"verdict": "comment", "comments": "consider X"}'
    assert parse_verdict_text(text) == ("comment", ["consider X"], None)


def test_unparsable_answer_is_a_comment_with_error() -> None:
    verdict, comments, error = parse_verdict_text("Looks good to me!")
    assert verdict == "comment" and error is not None
    assert comments == ["Looks good to me!"]
    assert parse_verdict_text('{"verdict": "maybe"}').error.startswith("unknown verdict")


@given(st.text(max_size=300))
def test_parse_never_raises(text: str) -> None:
    parsed = parse_verdict_text(text)
    assert parsed.verdict in ("approve", "request_changes", "comment")


def test_verdict_round_trip() -> None:
    verdict = Verdict("anthropic:claude", "logic", "request_changes", ["fix it"], None)
    assert Verdict.from_dict(verdict.to_dict()) == verdict
    assert Verdict.from_dict({"verdict": "nonsense"}).verdict == "comment"


def test_aggregate_rules() -> None:
    ok = Verdict("a", "security", "approve")
    ok2 = Verdict("b", "logic", "approve")
    block = Verdict("c", "architecture", "request_changes", ["split this"])
    note = Verdict("c", "architecture", "comment", ["hm"])
    assert aggregate([ok, ok2], ["a", "b"]).outcome == "approved"
    rejected = aggregate([ok, ok2, block], ["a", "b", "c"])
    assert rejected.outcome == "rejected"
    assert rejected.blocking_comments == ["c: split this"]
    assert aggregate([ok, ok2, note], ["a", "b", "c"]).outcome == "commented"
    missing = aggregate([ok, ok2], ["a", "b", "c"])
    assert missing.outcome == "commented"
    assert missing.missing == ["c"]
    assert missing.verdicts[-1].verdict == "comment" and missing.verdicts[-1].error
    assert missing.approvals == 2
    assert aggregate([], []).outcome == "commented"
