"""Administration of routes, sequences and handoffs: list, show, upsert and delete an
operator's overrides (admins: the platform defaults too). Every write is checked against
the whole resulting policy first; a refused write changes nothing."""

from __future__ import annotations

from typing import Any

from fleet_tui.domain.errors import NotFoundError, PermissionDeniedError, ValidationFailed
from fleet_tui.domain.models import Operator
from fleet_tui.engine.events.adapters import AdapterRegistry
from fleet_tui.engine.events.policy import Handoff, Policy, Route, Sequence, parse
from fleet_tui.engine.events.resolve import PolicyCache
from fleet_tui.engine.events.validate import check_policy
from fleet_tui.store import routes as route_store
from fleet_tui.store.db import Database

KINDS: dict[str, type[Route] | type[Sequence] | type[Handoff]] = {
    "route": Route, "sequence": Sequence, "handoff": Handoff}
PLURAL = {"route": "routes", "sequence": "sequences", "handoff": "handoffs"}
PLATFORM_VIEW = ""  # resolving for no operator gives the platform defaults alone


def _kind(kind: str) -> type[Route] | type[Sequence] | type[Handoff]:
    if kind not in KINDS:
        raise ValidationFailed("kind", f"must be one of {', '.join(KINDS)}")
    return KINDS[kind]


def key_of(item: Route | Sequence | Handoff) -> str:
    return item.event_type if isinstance(item, Route) else item.name


def to_row(item: Route | Sequence | Handoff) -> dict[str, Any]:
    """The item as the store writes it (conditions without unset entries)."""
    data = item.model_dump(mode="json", exclude={"operator_id"})
    if isinstance(item, Handoff):
        data["conditions"] = item.conditions.model_dump(mode="json", exclude_none=True)
    return data


class RouterAdmin:
    def __init__(self, db: Database, cache: PolicyCache, adapters: AdapterRegistry) -> None:
        self._db = db
        self._cache = cache
        self._adapters = adapters

    async def list(self, operator: Operator, kind: str) -> list[dict[str, Any]]:
        """Platform defaults and the operator's overrides (admins: everyone's), by key."""
        _kind(kind)
        async with self._db.tenant(operator, kind="read") as conn:
            return await route_store.list_rows(conn, kind, None if operator.is_admin else operator.id)

    async def effective(self, operator: Operator) -> Policy:
        return await self._fresh_policy(operator, operator.id)

    async def show(self, operator: Operator, kind: str, key: str) -> dict[str, Any]:
        """The effective item and where it comes from (override or platform default)."""
        _kind(kind)
        rows = [r for r in await self.list(operator, kind)
                if r[route_store.TABLES[kind].key] == key and r["operator_id"] in (None, operator.id)]
        if not rows:
            raise NotFoundError(kind, key)
        override = next((r for r in rows if r["operator_id"] is not None), None)
        default = next((r for r in rows if r["operator_id"] is None), None)
        return {"kind": kind, "key": key, "source": "override" if override else "platform",
                "effective": override or default, "override": override, "default": default}

    async def upsert(self, operator: Operator, kind: str, data: dict[str, Any], *,
                     platform: bool = False) -> dict[str, Any]:
        item = parse(_kind(kind), {k: v for k, v in data.items() if k != "operator_id"}, field=kind)
        owner = self._owner(operator, platform)
        current = await self._fresh_policy(operator, owner or PLATFORM_VIEW)
        check_policy(_replace(current, kind, item), self._adapters.names())
        async with self._db.tenant(operator) as conn:
            row = await route_store.upsert(conn, kind, owner, to_row(item))
        self._cache.invalidate(owner)
        return row

    async def delete(self, operator: Operator, kind: str, key: str, *, platform: bool = False) -> None:
        _kind(kind)
        owner = self._owner(operator, platform)
        async with self._db.tenant(operator) as conn:
            if not await route_store.delete(conn, kind, owner, key):
                raise NotFoundError(f"{'platform' if owner is None else 'operator'} {kind}", key)
            after = await route_store.resolve_policy(conn, owner or PLATFORM_VIEW)
            try:
                check_policy(Policy.model_validate(after), self._adapters.names())
            except ValidationFailed as exc:
                raise ValidationFailed(exc.field, f"deleting {kind} {key} would leave: {exc.rule}") from None
            # raising above rolls the delete back: a refused delete changes nothing
        self._cache.invalidate(owner)

    def _owner(self, operator: Operator, platform: bool) -> str | None:
        if platform and not operator.is_admin:
            raise PermissionDeniedError("only an admin may change the platform defaults")
        return None if platform else operator.id

    async def _fresh_policy(self, operator: Operator, owner: str) -> Policy:
        async with self._db.tenant(operator, kind="read") as conn:
            return Policy.model_validate(await route_store.resolve_policy(conn, owner))


def _replace(policy: Policy, kind: str, item: Route | Sequence | Handoff) -> Policy:
    field = PLURAL[kind]
    items = [i for i in getattr(policy, field) if key_of(i) != key_of(item)] + [item]
    return policy.model_copy(update={field: items})
