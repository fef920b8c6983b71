"""The platform's default policy: the same rows migration 004 seeds (a test compares them).
Used as the code fallback when the database has no policy or cannot be read."""

from __future__ import annotations

from typing import Any

from fleet_tui.engine.events.policy import Policy


def _step(name: str, adapter: str, wave: int, criticality: str, retries: int,
          params: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "adapter": adapter, "wave": wave, "criticality": criticality,
            "retries": retries, "params": params}


def _notify(name: str, description: str, kind: str, summary: str) -> dict[str, Any]:
    return {"name": name, "description": description,
            "steps": [_step("notify", "notify", 0, "best_effort", 2, {"kind": kind, "summary": summary})]}


REVIEWER_FOCUSES = ("security", "logic", "architecture")

DEFAULT_SEQUENCES: list[dict[str, Any]] = [
    {"name": "review_pipeline",
     "description": "reviewers on a change whose CI passes, then ready or rejected",
     "steps": [
         _step("start_review", "transition_task", 0, "critical", 2, {"to": "reviewing"}),
         *[_step(f"review_{focus}", "run_reviewer", 1, "best_effort", 2, {"focus": focus})
           for focus in REVIEWER_FOCUSES],
         _step("conclude_review", "transition_task", 2, "critical", 2, {"to": "review_outcome"}),
     ]},
    {"name": "retry_policy",
     "description": "capture the failure, then retry with backoff or abandon when the budget is spent",
     "steps": [
         _step("capture", "capture_failure", 0, "best_effort", 0, {}),
         _step("retry_or_abandon", "transition_task", 1, "critical", 2, {"to": "retry_or_abandon"}),
     ]},
    _notify("notify_completed", "tell the operator a task was merged", "completed", "merged into base"),
    _notify("notify_abandoned", "tell the operator a task was abandoned", "abandoned",
            "retry budget spent or abandoned"),
    _notify("notify_rejected", "tell the operator the reviewers asked for changes", "rejected",
            "reviewers requested changes"),
    _notify("notify_health_alert", "tell the operators a health threshold was crossed", "health_alert",
            "health threshold crossed"),
]

DEFAULT_ROUTES: list[dict[str, Any]] = [
    {"event_type": "task.pr_created", "sequence_name": "review_pipeline", "match": {"ci_status": "passing"}},
    {"event_type": "task.failed", "sequence_name": "retry_policy", "match": {}},
    {"event_type": "task.rejected", "sequence_name": "retry_policy", "match": {}},
    {"event_type": "task.merged", "sequence_name": "notify_completed", "match": {}},
    {"event_type": "task.abandoned", "sequence_name": "notify_abandoned", "match": {}},
    {"event_type": "health.alert", "sequence_name": "notify_health_alert", "match": {}},
]

DEFAULT_HANDOFFS: list[dict[str, Any]] = [
    {"name": "rejected_review_notifies", "source_sequence": "review_pipeline",
     "source_step": "conclude_review", "target_sequence": "notify_rejected",
     "conditions": {"classification": "rejected"},
     "context_map": {"task_id": "task_id", "summary": "output.summary"}},
]


def default_policy() -> Policy:
    """The defaults in the order fleet_resolve_policy returns them (by key)."""
    return Policy.model_validate({
        "routes": sorted(DEFAULT_ROUTES, key=lambda r: r["event_type"]),
        "sequences": sorted(DEFAULT_SEQUENCES, key=lambda s: s["name"]),
        "handoffs": sorted(DEFAULT_HANDOFFS, key=lambda h: h["name"]),
    })
