"""Operations tests: job files and the domain verbs, run over real HTTP against an in-loop simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from ops_support import Sim

from bulk_engine.simulator import SimulatorConfig, SimulatorServer


@pytest.fixture
async def start_sim() -> AsyncIterator[Callable[..., Any]]:
    """``sim = await start_sim(**SimulatorConfig fields)``; every server is stopped after the test."""
    servers: list[SimulatorServer] = []

    async def start(**config: Any) -> Sim:
        server = await SimulatorServer(SimulatorConfig(**config)).start()
        servers.append(server)
        info = server.info()
        return Sim(server, info["access_token"], info["ad_account_ids"], info["page_ids"])

    yield start
    for server in servers:
        await server.stop()
