"""The fleet's runtimes (where agent processes run), each made on first use: docker's
client is not opened by a fleet that never runs a container."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fleet_tui.domain.errors import ValidationFailed
from fleet_tui.domain.models import RuntimeKind
from fleet_tui.infra.protocols import Runtime


class Runtimes:
    def __init__(self, factories: Mapping[RuntimeKind, Callable[[], Runtime]]) -> None:
        self.factories = dict(factories)
        # the ones made so far (closed with the engine); a test may put a wrapped one here
        self.built: dict[RuntimeKind, Runtime] = {}

    def get(self, kind: RuntimeKind | str) -> Runtime:
        kind = RuntimeKind(kind)
        if kind not in self.built:
            factory = self.factories.get(kind)
            if factory is None:
                raise ValidationFailed("runtime", f"{kind} is not available in this fleet")
            self.built[kind] = factory()
        return self.built[kind]

    async def release(self, task_id: str, kind: RuntimeKind | str) -> None:
        """What an exited agent left in its runtime (the ledger's move out of running)."""
        await self.get(kind).release(task_id)
