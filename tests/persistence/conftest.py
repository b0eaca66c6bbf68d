"""Fixtures: journal backends (every backend test runs against each) and an in-loop simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from persist_support import JournalFactory, Sim
from pg_server import new_schema_url

from bulk_engine.simulator import SimulatorConfig, SimulatorServer

BACKENDS = ("sqlite", "memory", "postgres")


@pytest.fixture(params=BACKENDS)
def journals(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JournalFactory]:
    """The backend under test; ``postgres`` is a fresh schema on the session's real server."""
    url = new_schema_url(request.getfixturevalue("postgres_server")) if request.param == "postgres" else None
    factory = JournalFactory(request.param, tmp_path, url)
    yield factory
    factory.close_all()


@pytest.fixture
async def start_sim() -> AsyncIterator[Callable[..., Any]]:
    """``sim = await start_sim(**SimulatorConfig fields)``; stopped after the test."""
    servers: list[SimulatorServer] = []

    async def start(**config: Any) -> Sim:
        config.setdefault("access_tier", "standard_access")
        server = await SimulatorServer(SimulatorConfig(**config)).start()
        servers.append(server)
        info = server.info()
        return Sim(server, info["access_token"], info["ad_account_ids"], info["page_ids"][0])

    yield start
    for server in servers:
        await server.stop()
