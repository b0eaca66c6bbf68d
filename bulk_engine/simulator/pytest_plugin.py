"""pytest plugin: the ``graph_simulator`` fixture, a Graph API simulator on 127.0.0.1 with a free port.

Installed as a ``pytest11`` entry point (``pyproject.toml``), so any test suite gets the fixture just by
installing the package — no ``conftest.py`` needed::

    def test_my_sync(graph_simulator):
        info = graph_simulator.info()          # url, access_token, ad_account_ids, page_ids, …
        run_my_code(base_url=info["url"], token=info["access_token"])
        assert graph_simulator.run(lambda core: len(core.store.snapshot(["campaign"]))) == 3

Configure a run in one of three ways (most specific wins):

- the marker ``@pytest.mark.graph_simulator(quota_override=50, seed=7)`` — keyword arguments of
  :class:`~bulk_engine.simulator.SimulatorConfig`, applied on top of the configured base;
- override the ``graph_simulator_config`` fixture in a ``conftest.py`` or test module;
- ``@pytest.mark.parametrize("graph_simulator_config", [SimulatorConfig(...)])``.

The fixture is function-scoped: every test gets a fresh store, clock and rate-limit state.
Inspect it thread-safely with ``graph_simulator.run(lambda core: ...)``; move virtual time with
``graph_simulator.run(lambda core: core.clock.advance(seconds))`` instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .config import SimulatorConfig
from .server import SimulatorThread

MARKER = "graph_simulator"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(**config): SimulatorConfig overrides for the graph_simulator fixture"
    )


@pytest.fixture
def graph_simulator_config() -> SimulatorConfig:
    """The simulator's configuration; override this fixture to change accounts, quotas or faults."""
    return SimulatorConfig()


@pytest.fixture
def graph_simulator(
    request: pytest.FixtureRequest, graph_simulator_config: SimulatorConfig
) -> Iterator[SimulatorThread]:
    """A running simulator (own event loop in a daemon thread), stopped after the test."""
    config = graph_simulator_config
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None:
        if marker.args:
            raise pytest.UsageError(f"@pytest.mark.{MARKER} takes SimulatorConfig keyword arguments only")
        config = SimulatorConfig.model_validate({**config.model_dump(), **marker.kwargs})
    with SimulatorThread(config) as sim:
        yield sim
