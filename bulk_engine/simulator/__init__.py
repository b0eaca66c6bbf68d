"""A faithful local simulator of the Graph API for the Marketing API (see ``graph.py`` for the core).

Start it in-process with :class:`SimulatorServer` (async) or :class:`SimulatorThread` (sync, own loop),
from the shell with ``bulk-engine simulator``, or in pytest through the ``graph_simulator`` fixture.
"""

from .config import FaultConfig, SimulatorConfig
from .graph import GraphCore, GraphRequest, GraphResponse
from .server import SimulatorServer, SimulatorThread, create_app

__all__ = [
    "FaultConfig",
    "GraphCore",
    "GraphRequest",
    "GraphResponse",
    "SimulatorConfig",
    "SimulatorServer",
    "SimulatorThread",
    "create_app",
]
