"""CLI tests: ``bulk-engine`` driven as a subprocess against the simulator running as another subprocess."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cli_support import Sim, simulator


@pytest.fixture(scope="session")
def shared_sim() -> Iterator[Sim]:
    """One simulator for the tests that only need a healthy Graph (standard tier: no quota pressure)."""
    with simulator("--tier", "standard_access") as sim:
        yield sim
