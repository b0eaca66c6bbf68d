"""A faithful local simulator of the Graph API for the Marketing API (see ``graph.py`` for the core).

Start it in-process with :class:`SimulatorServer` (async) or :class:`SimulatorThread` (sync, own loop),
from the shell with ``bulk-engine simulator``, or in pytest through the ``graph_simulator`` fixture.
"""

from . import handlers  # noqa: F401  (imported to register the feature modules' routes with the core)
from .config import FaultConfig, SimulatorConfig
from .context import GraphRequest, GraphResponse
from .graph import GraphCore
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
