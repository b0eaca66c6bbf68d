"""``bulk-engine simulator``: serve the local Graph API simulator until SIGINT or SIGTERM.

Why a subcommand: tests, the demo and a user's own trials start the simulator as a process like any server;
its first stdout line is the JSON a client needs (url, token, ad accounts), which is why — unlike every other
command — it prints its own token.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from .common import EXIT_FAILURE, EXIT_OK, UsageError
from .options import non_negative_float, one_line, positive_float, positive_int

if TYPE_CHECKING:
    from bulk_engine.simulator import FaultConfig, SimulatorConfig

__all__ = [
    "configure_simulator",
    "connect_url",
    "run_simulator",
    "serve_simulator",
    "simulator_config",
]


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be an integer, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 0 and 65535, got {value}")
    return value


def fault_spec(text: str) -> FaultConfig:
    from bulk_engine.simulator import FaultConfig

    try:
        return FaultConfig.parse_spec(text)
    except ValueError as err:  # pydantic's ValidationError is a ValueError too
        raise argparse.ArgumentTypeError(f"invalid fault spec {text!r}: {one_line(err)}") from None


def configure_simulator(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Serve the local Graph API simulator. The first line on stdout is one JSON object with the url, "
        "access_token, ad_account_ids and page_ids a client needs; it serves until SIGINT or SIGTERM."
    )
    parser.add_argument(
        "--port",
        type=port_number,
        required=True,
        metavar="PORT",
        help="TCP port; 0 picks a free one",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--latency-ms",
        type=non_negative_float,
        metavar="N",
        help="added latency per HTTP request (wins over latency_ms in --faults)",
    )
    parser.add_argument(
        "--jitter-ms",
        type=non_negative_float,
        metavar="N",
        help="uniform +/- jitter on the latency",
    )
    parser.add_argument(
        "--time-scale",
        type=positive_float,
        metavar="X",
        help="virtual seconds per real second (3600 lets an hour's quota window pass in a second)",
    )
    parser.add_argument(
        "--faults",
        type=fault_spec,
        metavar="SPEC",
        help="fault injection, e.g. transient=0.05,null=0.02,drop=0.01,http5xx=0.01,throttle=0.01",
    )
    parser.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="seed for fault injection (runs reproduce)",
    )
    parser.add_argument(
        "--app-secret-env",
        metavar="VAR",
        help="require appsecret_proof, with the app secret read from environment variable VAR",
    )
    parser.add_argument(
        "--quota",
        type=positive_int,
        metavar="N",
        help="override the per-hour call quota",
    )
    parser.add_argument(
        "--tier",
        choices=("development_access", "standard_access"),
        help="access tier of the simulated app (sets the rate-limit quota)",
    )


def simulator_config(args: argparse.Namespace) -> SimulatorConfig:
    from pydantic import SecretStr

    from bulk_engine.simulator import FaultConfig, SimulatorConfig

    faults: FaultConfig = args.faults or FaultConfig()
    overrides: dict[str, float] = {}
    if args.latency_ms is not None:
        overrides["latency_ms"] = args.latency_ms
    if args.jitter_ms is not None:
        overrides["latency_jitter_ms"] = args.jitter_ms
    if overrides:
        faults = FaultConfig.model_validate({**faults.model_dump(), **overrides})
    values: dict[str, Any] = {"faults": faults}
    if args.seed is not None:
        values["seed"] = args.seed
    if args.time_scale is not None:
        values["time_scale"] = args.time_scale
    if args.quota is not None:
        values["quota_override"] = args.quota
    if args.tier is not None:
        values["access_tier"] = args.tier
    if args.app_secret_env is not None:
        secret = os.environ.get(args.app_secret_env)
        if not secret:
            raise UsageError(f"--app-secret-env: environment variable {args.app_secret_env} is not set")
        values["app_secret"] = SecretStr(secret)
    return SimulatorConfig(**values)


def run_simulator(args: argparse.Namespace) -> int:
    config = simulator_config(args)
    return asyncio.run(serve_simulator(config, args.host, args.port))


async def serve_simulator(config: SimulatorConfig, host: str, port: int) -> int:
    from bulk_engine.simulator import SimulatorServer
    from bulk_engine.simulator.server import start_info

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except NotImplementedError:  # Windows: no loop signal handlers
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
        except RuntimeError:  # not the main thread: the caller stops us by cancelling the task
            pass
    server = SimulatorServer(config, host=host, port=port)
    try:
        try:
            await server.start()
        except OSError as err:
            print(
                f"bulk-engine simulator: cannot listen on {host}:{port}: {err}",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        info = start_info(server.core, connect_url(host, server.port))
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()
        print(
            f"bulk-engine simulator: serving {info['url']} (Ctrl-C to stop)",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()
        print("bulk-engine simulator: stopping", file=sys.stderr, flush=True)
    finally:
        await server.stop()
        for sig in installed:
            loop.remove_signal_handler(sig)
    return EXIT_OK


def connect_url(host: str, port: int) -> str:
    """The URL a local client dials: a wildcard bind is reachable on loopback; IPv6 gets brackets."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"
