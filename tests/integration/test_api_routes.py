"""Every route of the headless API on the real conductor: success and failure codes,
ownership (another operator's task is 404 and never its data), tiers, the governor's 403."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fleet_tui.domain.models import CIStatus, Tier
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.kit.bus import Notice
from fleet_tui.domain.models import SYSTEM
from fleet_tui.store import reputation as history
from tests.integration.api_harness import NO_IMAGE, Api, api, new_operator  # noqa: F401 (fixture)

S = TaskStatus


def field_errors(response: Any) -> dict[str, str]:
    return {e["field"]: e["rule"] for e in response.json()["errors"]}


async def test_health_and_jwks_are_public(api: Api) -> None:
    health = await api.client.get("/healthz")
    assert health.status_code == 200 and health.json()["monitor"]["running"] is True
    jwks = await api.client.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    assert [k["kid"] for k in jwks.json()["keys"]] == [api.keystore.current().kid]
    assert "d" not in jwks.json()["keys"][0]  # never the private part
    api.stopping.set()
    draining = await api.client.get("/healthz")
    assert draining.status_code == 503 and draining.json()["status"] == "draining"


async def test_builder_spawns_one_agent_and_the_second_is_refused_naming_the_limit(api: Api) -> None:
    builder = new_operator(Tier.BUILDER)
    first = await api.client.post("/api/fleet/spawn", json=api.spawn_body("first task"),
                                  headers=api.auth(builder))
    assert first.status_code == 201, first.text
    task = first.json()["task"]
    assert first.json()["created"] is True and task["status"] == "running"
    assert task["operator_id"] == builder.id
    assert task["trace_id"] == first.headers["x-trace-id"]  # the request's trace id rides on
    second = await api.client.post("/api/fleet/spawn", json=api.spawn_body("second task"),
                                   headers=api.auth(builder))
    assert second.status_code == 403
    assert "the builder limit is 1" in second.json()["detail"]
    assert api.conductor.governor.denials == 1


async def test_spawn_refusals(api: Api) -> None:
    observer = new_operator(Tier.OBSERVER)
    refused = await api.client.post("/api/fleet/spawn", json=api.spawn_body("x"), headers=api.auth(observer))
    assert refused.status_code == 403
    assert refused.json()["detail"] == f"spawn needs tier builder or above; operator {observer.id} is observer"
    anonymous = await api.client.post("/api/fleet/spawn", json=api.spawn_body("x"))
    assert anonymous.status_code == 401 and "www-authenticate" in anonymous.headers

    sovereign = new_operator(Tier.SOVEREIGN)
    bad = await api.client.post("/api/fleet/spawn", headers=api.auth(sovereign),
                                json={"repo": "relative/path", "priority": 101, "surprise": 1})
    assert bad.status_code == 400
    errors = field_errors(bad)
    assert {"description", "priority", "surprise"} <= set(errors)
    for loose in (True, "50", 50.0):  # a boolean is not an integer, nor is text or a float
        for field in ("priority", "max_retries"):
            lax = await api.client.post("/api/fleet/spawn", headers=api.auth(sovereign),
                                        json=api.spawn_body("x", **{field: loose}))
            assert lax.status_code == 400 and list(field_errors(lax)) == [field], (field, loose, lax.text)
            assert "integer" in field_errors(lax)[field]
    not_absolute = await api.client.post("/api/fleet/spawn", headers=api.auth(sovereign),
                                         json={"description": "x", "repo": "repo"})
    assert not_absolute.status_code == 400 and "absolute path" in not_absolute.text
    bad_branch = await api.client.post("/api/fleet/spawn", headers=api.auth(sovereign),
                                       json=api.spawn_body("x", branch="-rf"))
    assert bad_branch.status_code == 400 and "branch" in field_errors(bad_branch)
    not_a_repo = await api.client.post("/api/fleet/spawn", headers=api.auth(sovereign),
                                       json={"description": "x", "repo": "/"})
    assert not_a_repo.status_code == 400 and field_errors(not_a_repo) == {"repo": "not a git repository: /"}
    bad_key = await api.client.post("/api/fleet/spawn", headers={**api.auth(sovereign), "Idempotency-Key": "a b"},
                                    json=api.spawn_body("x"))
    assert bad_key.status_code == 400
    status = await api.client.get("/api/fleet/status", headers=api.auth(sovereign))
    assert status.json()["tasks"] == []  # nothing was admitted


@pytest.mark.docker
async def test_a_docker_spawn_without_its_image_is_a_conflict_naming_the_image(api: Api) -> None:
    op = new_operator(Tier.SOVEREIGN)
    refused = await api.client.post("/api/fleet/spawn", headers=api.auth(op),
                                    json=api.spawn_body("contained", runtime="docker", agent="demo"))
    assert refused.status_code == 409, refused.text  # the operator builds it: not an outage (503)
    assert f"no image {NO_IMAGE}" in refused.json()["detail"]
    assert (await api.client.get("/api/fleet/status", headers=api.auth(op))).json()["tasks"] == []


async def test_idempotency_key_returns_the_existing_task(api: Api) -> None:
    op = new_operator(Tier.ARCHITECT)
    headers = {**api.auth(op), "Idempotency-Key": "deploy-42"}
    first = await api.client.post("/api/fleet/spawn", json=api.spawn_body("once"), headers=headers)
    again = await api.client.post("/api/fleet/spawn", json=api.spawn_body("once, retried"), headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["created"] is False
    assert again.json()["task"]["id"] == first.json()["task"]["id"]


async def test_status_scope_and_all_for_admins_only(api: Api) -> None:
    alice, bob = new_operator(Tier.BUILDER), new_operator(Tier.BUILDER)
    observer = new_operator(Tier.OBSERVER)
    admin = new_operator(Tier.OBSERVER, admin=True)
    a = await api.spawn(alice, "alice's task")
    b = await api.spawn(bob, "bob's task")
    mine = await api.client.get("/api/fleet/status", headers=api.auth(alice))
    assert mine.status_code == 200
    assert [t["id"] for t in mine.json()["tasks"]] == [a["id"]]
    assert mine.json()["live"] == 1 and mine.json()["limit"] == 1
    refused = await api.client.get("/api/fleet/status?all=true", headers=api.auth(alice))
    assert refused.status_code == 403 and "needs admin" in refused.json()["detail"]
    everyone = await api.client.get("/api/fleet/status?all=true", headers=api.auth(admin))
    assert everyone.status_code == 200
    assert {t["id"] for t in everyone.json()["tasks"]} == {a["id"], b["id"]}
    own = await api.client.get("/api/fleet/status", headers=api.auth(observer))
    assert own.status_code == 200 and own.json()["tasks"] == [] and own.json()["limit"] == 0
    assert (await api.client.get("/api/fleet/status?limit=0", headers=api.auth(alice))).status_code == 400


async def test_task_routes_enforce_ownership(api: Api) -> None:
    owner, other = new_operator(Tier.BUILDER), new_operator(Tier.SOVEREIGN)
    admin = new_operator(Tier.OBSERVER, admin=True)
    # the agent stalls: it is still running when the others' stop has been refused
    task = await api.spawn(owner, "secret plan for the owner only\nFLEET-DEMO: stall 30")
    tid = task["id"]
    mine = await api.client.get(f"/api/fleet/tasks/{tid}", headers=api.auth(owner))
    assert mine.status_code == 200
    assert mine.json()["task"]["description"].startswith("secret plan for the owner only")
    assert [r["to_status"] for r in mine.json()["audit"] if r["action"] == "transition"][-1] == "running"
    assert (await api.client.get(f"/api/fleet/tasks/{tid}", headers=api.auth(admin))).status_code == 200
    for method, path in (("GET", f"/api/fleet/tasks/{tid}"), ("GET", f"/api/fleet/tasks/{tid}/logs"),
                         ("GET", f"/api/fleet/tasks/{tid}/logs/stream"),
                         ("POST", f"/api/fleet/tasks/{tid}/stop"), ("POST", f"/api/fleet/tasks/{tid}/retry"),
                         ("POST", f"/api/fleet/tasks/{tid}/merge"), ("DELETE", f"/api/fleet/tasks/{tid}")):
        response = await api.client.request(method, path, headers=api.auth(other))
        assert response.status_code == 404, (method, path, response.text)
        assert "secret plan" not in response.text
        assert response.json()["detail"] == f"task {tid} not found"
    still = await api.conductor.registry.get(tid, operator=SYSTEM)
    assert still.status == S.RUNNING  # nobody else's stop went through
    missing = await api.client.get("/api/fleet/tasks/000000000000", headers=api.auth(owner))
    assert missing.status_code == 404
    malformed = await api.client.get("/api/fleet/tasks/bad%20id", headers=api.auth(owner))
    assert malformed.status_code == 400


async def test_logs_stop_delete_and_their_conflicts(api: Api) -> None:
    op = new_operator(Tier.BUILDER)
    observer = new_operator(Tier.OBSERVER)
    task = await api.spawn(op, "long one\nFLEET-DEMO: stall 30")
    tid = task["id"]
    await api.wait_for(tid, lambda t: t.status == S.RUNNING)
    live_delete = await api.client.delete(f"/api/fleet/tasks/{tid}", headers=api.auth(op))
    assert live_delete.status_code == 409 and "stop it before deleting" in live_delete.json()["detail"]
    assert (await api.client.post(f"/api/fleet/tasks/{tid}/stop", headers=api.auth(observer))).status_code == 403
    assert (await api.client.post(f"/api/fleet/tasks/{tid}/retry", headers=api.auth(op))).status_code == 409
    assert (await api.client.post(f"/api/fleet/tasks/{tid}/merge", headers=api.auth(op))).status_code == 409
    stopped = await api.client.post(f"/api/fleet/tasks/{tid}/stop", headers=api.auth(op))
    assert stopped.status_code == 200 and stopped.json()["status"] == "cancelled"
    assert not await api.conductor.runtime_for("tmux").is_alive(tid)
    again = await api.client.post(f"/api/fleet/tasks/{tid}/stop", headers=api.auth(op))
    assert again.status_code == 409
    deleted = await api.client.delete(f"/api/fleet/tasks/{tid}", headers=api.auth(op))
    assert deleted.status_code == 204 and deleted.content == b""
    gone = await api.client.delete(f"/api/fleet/tasks/{tid}", headers=api.auth(op))
    assert gone.status_code == 404


async def test_logs_tail_and_stream(api: Api) -> None:
    op = new_operator(Tier.BUILDER)
    task = await api.spawn(op, "chatty\nFLEET-DEMO: flood 30")
    tid = task["id"]
    await api.wait_for(tid, lambda t: t.status == S.PR_CREATED)
    tail = await api.client.get(f"/api/fleet/tasks/{tid}/logs?lines=5", headers=api.auth(op))
    assert tail.status_code == 200 and len(tail.json()["lines"]) == 5
    assert any("usage:" in line for line in tail.json()["lines"])
    streamed = await api.client.get(f"/api/fleet/tasks/{tid}/logs/stream?max_seconds=20", headers=api.auth(op))
    assert streamed.status_code == 200 and streamed.headers["content-type"].startswith("text/plain")
    assert streamed.text.splitlines()[-len(tail.json()["lines"]):] == tail.json()["lines"]
    assert (await api.client.get(f"/api/fleet/tasks/{tid}/logs?lines=0", headers=api.auth(op))).status_code == 400


async def test_retry_merge_and_reputation(api: Api) -> None:
    op, stranger = new_operator(Tier.BUILDER), new_operator(Tier.BUILDER)
    task = await api.spawn(op, "second time lucky\nFLEET-DEMO: fail-until-attempt 2")
    tid = task["id"]
    await api.wait_for(tid, lambda t: t.status == S.FAILED)
    retried = await api.client.post(f"/api/fleet/tasks/{tid}/retry", headers=api.auth(op))
    assert retried.status_code == 200 and retried.json()["status"] == "running"
    assert retried.json()["retry_count"] == 1
    reviewable = await api.wait_for(tid, lambda t: t.status == S.PR_CREATED and t.ci_status == CIStatus.PASSING)
    await api.conductor.monitor.stop()  # from here the test plays the reviewers
    reviewing = await api.conductor.move(reviewable, S.REVIEWING, actor="test")
    await api.conductor.move(reviewing, S.READY, actor="test")

    rep = await api.client.get("/api/reputation/query?agent=demo&task_type=feature", headers=api.auth(op))
    assert rep.status_code == 200
    assert rep.json() | {"confidence": None} == {"agent": "demo", "model": None, "task_type": "feature",
                                                  "score": 0.5, "confidence": None, "n": 2}
    assert 0 < rep.json()["confidence"] < 1
    theirs = await api.client.get("/api/reputation/query?agent=demo", headers=api.auth(stranger))
    assert theirs.json()["n"] == 0 and theirs.json()["confidence"] is None  # RLS: not their history
    assert (await api.client.get("/api/reputation/query?agent=Bad Agent", headers=api.auth(op))).status_code == 400

    merged = await api.client.post(f"/api/fleet/tasks/{tid}/merge", headers=api.auth(op))
    assert merged.status_code == 200 and merged.json()["status"] == "merged"
    exhausted = await api.client.post(f"/api/fleet/tasks/{tid}/retry", headers=api.auth(op))
    assert exhausted.status_code == 409


async def test_retry_budget_spent_is_refused(api: Api) -> None:
    op = new_operator(Tier.BUILDER)
    task = await api.spawn(op, "never works\nFLEET-DEMO: fail", max_retries=0)
    await api.wait_for(task["id"], lambda t: t.status == S.FAILED)
    refused = await api.client.post(f"/api/fleet/tasks/{task['id']}/retry", headers=api.auth(op))
    assert refused.status_code == 403 and "retry budget" in refused.json()["detail"]


async def test_a_task_waiting_for_a_person_is_answered_or_granted_over_the_api(api: Api) -> None:
    """The monitor marks a refused run needs_input (the claude contract test proves that part);
    here the test plays it on a demo task and drives the two ways out."""
    from fleet_tui.domain.models import TaskPatch

    op, stranger = new_operator(Tier.BUILDER), new_operator(Tier.BUILDER)
    api.conductor.settings.retry.auto = False  # the failed task stays failed
    task = await api.spawn(op, "never works\nFLEET-DEMO: fail", max_retries=0)
    tid = task["id"]
    failed = await api.wait_for(tid, lambda t: t.status == S.FAILED)
    assert (await api.client.post(f"/api/fleet/tasks/{tid}/answer", json={"text": "yes"},
                                  headers=api.auth(op))).status_code == 409  # it asked nothing
    await api.conductor.monitor.stop()  # from here the test plays the monitor
    asked = {"asked": [{"tool": "Bash", "target": "make lint", "grant": "Bash(make lint)"}]}
    waiting = await api.conductor.ledger.patch(failed, TaskPatch(needs_input=True, failure_context=asked))
    assert waiting.needs_input

    bad = await api.client.post(f"/api/fleet/tasks/{tid}/retry", json={"allow": ["Bash(a,b)"]}, headers=api.auth(op))
    assert bad.status_code == 400 and field_errors(bad) == {"allow": field_errors(bad)["allow"]}
    demo = await api.client.post(f"/api/fleet/tasks/{tid}/retry", json={"allow": ["Bash(make lint)"]},
                                 headers=api.auth(op))
    assert demo.status_code == 400 and "takes no granted permissions" in demo.json()["detail"]
    empty = await api.client.post(f"/api/fleet/tasks/{tid}/answer", json={"text": ""}, headers=api.auth(op))
    assert empty.status_code == 400
    theirs = await api.client.post(f"/api/fleet/tasks/{tid}/answer", json={"text": "go on"},
                                   headers=api.auth(stranger))
    assert theirs.status_code == 404
    answered = await api.client.post(f"/api/fleet/tasks/{tid}/answer", json={"text": "go on"}, headers=api.auth(op))
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "running" and answered.json()["needs_input"] is False
    assert answered.json()["retry_count"] == 0  # waiting for a person spends no retry
    detail = (await api.client.get(f"/api/fleet/tasks/{tid}", headers=api.auth(op))).json()
    assert "answered" in [row["action"] for row in detail["audit"]]


async def test_a_spent_credit_budget_is_a_refusal_not_an_error(api: Api) -> None:
    op = new_operator(Tier.BUILDER)
    await history.set_credit_budget(api.conductor.parts.db, operator_id=op.id, usd=0)
    refused = await api.client.post("/api/fleet/spawn", json=api.spawn_body("x"), headers=api.auth(op))
    assert refused.status_code == 403, refused.text
    assert "budget refuses every option" in refused.json()["detail"]


async def test_config_is_for_sovereigns_and_redacts_secrets(api: Api) -> None:
    sovereign, architect = new_operator(Tier.SOVEREIGN), new_operator(Tier.ARCHITECT)
    refused = await api.client.get("/api/fleet/config", headers=api.auth(architect))
    assert refused.status_code == 403 and "needs tier sovereign" in refused.json()["detail"]
    config = await api.client.get("/api/fleet/config", headers=api.auth(sovereign))
    assert config.status_code == 200
    assert config.json()["governor"]["tier_limits"]["builder"] == 1
    assert config.json()["notifications"]["telegram_bot_token"] == "**********"
    assert config.json()["api"]["events_secret"] == ["**********"]
    assert "telegram-secret-token" not in config.text and "test-events-secret" not in config.text


async def test_metrics_and_test_notification(api: Api) -> None:
    op, observer = new_operator(Tier.BUILDER), new_operator(Tier.OBSERVER)
    await api.spawn(op, "counted")
    assert (await api.client.get("/api/fleet/metrics")).status_code == 401
    metrics = await api.client.get("/api/fleet/metrics", headers=api.auth(observer))
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    samples = {(s.name, tuple(s.labels.items())): s.value
               for family in text_string_to_metric_families(metrics.text) for s in family.samples}
    assert samples[("fleet_governor_admissions_total", ())] == 1
    assert samples[("fleet_active_agents", (("tier", "builder"),))] == 1
    assert samples[("fleet_monitor_running", ())] == 1
    assert samples[("fleet_governor_denials_total", ())] == 0

    events = api.conductor.bus.subscribe()
    assert (await api.client.post("/api/fleet/notifications/test", headers=api.auth(observer))).status_code == 403
    sent = await api.client.post("/api/fleet/notifications/test", headers=api.auth(op))
    assert sent.status_code == 202
    async with api.conductor.parts.db.tenant(op) as conn:
        row = await conn.fetchrow("SELECT type, operator_id FROM fleet_notifications WHERE id = $1",
                                  int(sent.json()["id"]))
    assert dict(row) == {"type": "test", "operator_id": op.id}
    notices = [e for e in _drain(events) if isinstance(e, Notice)]
    assert [n.kind for n in notices] == ["test"]


def _drain(queue: Any) -> list[Any]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


@pytest.mark.parametrize("path", ["/api/fleet/nope", "/api/fleet/tasks"])
async def test_unknown_routes_answer_the_error_shape(api: Api, path: str) -> None:
    response = await api.client.get(path)
    assert response.status_code in (404, 405) and set(response.json()) >= {"detail", "errors"}


async def test_over_fleet_capacity_a_spawn_is_accepted_as_queued_202(api: Api) -> None:
    sovereign = new_operator(Tier.SOVEREIGN)
    api.conductor.governor.fleet_capacity = 1
    first = await api.client.post("/api/fleet/spawn", json=api.spawn_body("takes the only slot"),
                                  headers=api.auth(sovereign))
    assert first.status_code == 201, first.text
    queued = await api.client.post("/api/fleet/spawn", json=api.spawn_body("waits its turn"),
                                   headers=api.auth(sovereign))
    assert queued.status_code == 202, queued.text
    body = queued.json()
    assert body["queued"] is True and body["task"] is None and body["queue_id"] > 0
