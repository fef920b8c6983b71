"""What the review pipeline drives, and nothing more: the task's moves, patches and audit
(the ledger's), a fresh read of it, its change on the forge, the reviewers' profiles and
secrets, the notification of a rejection and the faces' bus. The composition root
(engine/session.py review_host) fills it; a test fills it with small fakes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fleet_tui.engine.kit.bus import Event
from fleet_tui.engine.ports import AuditNote, ChangeRefOf, GetTask, Move, Notify, ProfileOf, TaskPatcher
from fleet_tui.infra.protocols import Forge
from fleet_tui.infra.secrets import SecretsProvider


@dataclass(frozen=True)
class ReviewHost:
    move: Move
    patch: TaskPatcher
    audit: AuditNote
    get_task: GetTask  # the task as it is now (verdicts arrive one by one), read as the system
    notify: Notify  # a rejection's notification
    publish: Callable[[Event], None]  # a review that timed out, told to the faces
    change_ref: ChangeRefOf
    forge: Forge  # the change's diff and its checks (the definition of done)
    profile: ProfileOf  # an agent reviewer's profile
    secrets: SecretsProvider  # what an agent or a hosted API reviewer is given
