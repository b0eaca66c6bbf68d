"""pytest plugin: the ``graph_simulator`` fixture, a simulator on 127.0.0.1 with a free port.

Installed as a ``pytest11`` entry point, so users' own test suites get the fixture by installing the
package. Override ``graph_simulator_config`` to change accounts, quotas or faults.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .config import SimulatorConfig
from .server import SimulatorThread


@pytest.fixture
def graph_simulator_config() -> SimulatorConfig:
    return SimulatorConfig()


@pytest.fixture
def graph_simulator(graph_simulator_config: SimulatorConfig) -> Iterator[SimulatorThread]:
    with SimulatorThread(graph_simulator_config) as sim:
        yield sim
