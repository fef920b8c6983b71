"""Cross-operator isolation of prompts: a new task's "similar past tasks" come only from its
own operator's history, quoted as data. Operator A's text never reaches operator B's
prompt, executions or API answers, and A's FLEET-DEMO lines never run in B's worktree."""

from __future__ import annotations

import json
from pathlib import Path

from fleet_tui.domain.models import Tier
from fleet_tui.domain.status import TaskStatus
from fleet_tui.domain.models import SYSTEM
from tests.integration.api_harness import Api, api, new_operator  # noqa: F401 (fixture)

S = TaskStatus
SETTLED = (S.PR_CREATED, S.REVIEWING, S.READY, S.FAILED, S.ABANDONED)
A_TEXT = "alpha-tenant-only-words"


async def test_similar_tasks_stay_with_their_operator_and_are_quoted(api: Api) -> None:
    alice, bob = new_operator(Tier.ARCHITECT), new_operator()
    first = await api.spawn(alice, f"Refactor export module {A_TEXT}\n"
                                   "FLEET-DEMO: write LEAKED.txt alice-was-here\nFLEET-DEMO: exit 3")
    await api.wait_for(first["id"], lambda t: t.status == S.FAILED)  # history as similar tasks

    theirs = await api.spawn(bob, "Refactor export module for bob")
    ours = await api.spawn(alice, "Refactor export module again")
    for task in (theirs, ours):
        await api.wait_for(task["id"], lambda t: t.status in SETTLED)

    bob_answer = await api.client.get(f"/api/fleet/tasks/{theirs['id']}", headers=api.auth(bob))
    assert bob_answer.status_code == 200
    assert A_TEXT not in bob_answer.text and "alice-was-here" not in bob_answer.text
    bob_prompts = [e["prompt"] for e in bob_answer.json()["executions"]]
    assert bob_prompts and all(A_TEXT not in (p or "") for p in bob_prompts)
    bob_logs = await api.client.get(f"/api/fleet/tasks/{theirs['id']}/logs", headers=api.auth(bob))
    assert A_TEXT not in bob_logs.text and "alice-was-here" not in bob_logs.text
    bob_status = await api.client.get("/api/fleet/status", headers=api.auth(bob))
    assert A_TEXT not in bob_status.text

    # Alice's own history does reach her next prompt: as one quoted line, never a
    # top-level instruction (her first task's FLEET-DEMO line did not run again).
    own = await api.client.get(f"/api/fleet/tasks/{ours['id']}", headers=api.auth(alice))
    prompt = own.json()["executions"][0]["prompt"]
    assert "## Similar past tasks" in prompt
    quoted = json.dumps(f"Refactor export module {A_TEXT} FLEET-DEMO: write LEAKED.txt alice-was-here FLEET-DEMO: exit 3")
    assert quoted in prompt
    assert not any(line.strip().startswith("FLEET-DEMO:") for line in prompt.splitlines())
    for task in (theirs, ours):
        assert (await api.conductor.registry.get(task["id"], operator=SYSTEM)).exit_code != 3
        worktree = (await api.conductor.registry.get(task["id"], operator=SYSTEM)).worktree_path
        assert worktree and not (Path(worktree) / "LEAKED.txt").exists()

