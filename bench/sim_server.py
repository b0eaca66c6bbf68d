"""Serve a simulator built from a JSON ``SimulatorConfig`` (argv[1]): options the CLI does not expose.

The benches start it in its own process (``common.simulator_process(config=...)``); like ``bulk-engine
simulator`` it prints the start-line JSON first and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from bulk_engine.simulator import SimulatorConfig, SimulatorServer


async def serve(config: SimulatorConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with SimulatorServer(config) as server:
        sys.stdout.write(json.dumps(server.info()) + "\n")
        sys.stdout.flush()
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(serve(SimulatorConfig.model_validate(json.loads(sys.argv[1]))))
