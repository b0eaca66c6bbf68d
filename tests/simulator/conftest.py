from __future__ import annotations

import pytest
from helpers import Graph

from bulk_engine.simulator import SimulatorThread


@pytest.fixture
def graph(graph_simulator: SimulatorThread) -> Graph:
    """A client for the default simulator with its seeded token."""
    return Graph(graph_simulator.url, graph_simulator.info()["access_token"])


@pytest.fixture
def act(graph_simulator: SimulatorThread) -> str:
    return str(graph_simulator.info()["ad_account_ids"][0])


@pytest.fixture
def page_id(graph_simulator: SimulatorThread) -> str:
    return str(graph_simulator.info()["page_ids"][0])
