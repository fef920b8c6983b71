"""Every verb the README names exists in the CLI as it is (the README once said `routes
upsert`, a verb the CLI never had): each code span starting `fleet-tui VERB`, and each span
naming a verb with sub-verbs (`routes list|show|set`), is checked against the real parser."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from fleet_tui.cli import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"


def verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_verb_the_readme_names_exists() -> None:
    top = verbs(build_parser())
    spans = re.findall(r"`([^`\n]+)`", README.read_text())
    wrong = []
    for span in spans:
        words = span.split()
        named = words[0] == "fleet-tui"
        if named:
            words = words[1:]
        if not words or words[0].startswith("-") or not re.fullmatch(r"[a-z|]+", words[0]):
            continue
        first = words[0].split("|")
        if not all(w in top for w in first):
            if named or any(w in top for w in first):
                wrong.append(span)
            continue
        subs = verbs(top[first[0]])
        if subs and len(words) > 1 and re.fullmatch(r"[a-z|]+", words[1]):
            if not all(w in subs for w in words[1].split("|")):
                wrong.append(span)
    assert not wrong, f"README names verbs the CLI does not have: {wrong}"
