"""Helpers for the async backend's tests: the simulator's virtual clock as the engine's, and a store view
that two simulators can be compared by (ids and times differ from run to run; names and links do not)."""

from __future__ import annotations

import math
from typing import Any

import anyio

from bulk_engine.simulator import SimulatorServer
from bulk_engine.simulator import async_batch as sim_async
from bulk_engine.simulator.clock import VirtualClock

_VOLATILE = {"created_time", "updated_time", "start_time", "id", "account_id", "effective_status_changed"}
_KINDS = ("campaign", "adset", "adcreative", "ad")


class SimTime:
    """The engine's clock read from the simulator's virtual clock; ``sleep`` jumps it forward instead of
    waiting, so a set's processing delay passes without real time (a sleeper never moves time back)."""

    scale = 1.0

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock

    def monotonic(self) -> float:
        return self.clock.now()

    def wall(self) -> float:
        return self.clock.now()

    async def sleep(self, seconds: float) -> None:
        if seconds == math.inf:  # "until cancelled" (a wake-up nobody schedules): never a jump to infinity
            await anyio.sleep_forever()
        target = self.clock.now() + max(0.0, seconds)
        await anyio.lowlevel.checkpoint()
        behind = target - self.clock.now()
        if behind > 0:
            self.clock.advance(behind)


def advance_sets(server: SimulatorServer) -> None:
    """Run every request set's requests due by the virtual clock's now (as a read of it would)."""
    core = server.core
    for node in list(core.store.nodes("async_request_set")):
        sim_async.advance(core, node, core.clock.now())


def store_view(server: SimulatorServer) -> dict[tuple[str, str], dict[str, Any]]:
    """Every campaign, ad set, creative and ad by (type, name): its fields, ids replaced by the name of the
    object they point at (so two simulators that were sent the same job compare equal).

    The simulator runs a request set's requests only when the set is read, so every set is advanced to the
    clock's now first: a set the engine abandoned (or submitted twice) shows what it created by then."""
    advance_sets(server)
    nodes = [n for n in server.core.store.nodes() if n.type in _KINDS]
    names = {n.id: f"{n.type}:{n.data.get('name')}" for n in nodes}

    def norm(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items() if k not in _VOLATILE}
        if isinstance(value, list):
            return [norm(v) for v in value]
        if isinstance(value, str | int) and str(value) in names:
            return names[str(value)]
        return value

    view: dict[tuple[str, str], dict[str, Any]] = {}
    for node in nodes:
        key = (node.type, str(node.data.get("name")))
        assert key not in view, f"two {node.type}s named {key[1]!r}: a duplicate create"
        view[key] = {"data": norm(dict(node.data)), "parent": names.get(str(node.parent_id))}
    return view
