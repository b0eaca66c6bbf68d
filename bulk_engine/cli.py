"""The ``bulk-engine`` command line.

Each subcommand is one entry in :data:`COMMANDS`: a function that adds its arguments to an argparse
sub-parser and a handler that receives the parsed namespace and returns the process exit code. Adding a
subcommand (``run``, ``resume``, ``validate``, ``demo``, ``report``) is one :class:`Command` each.

Exit codes: 0 success, 1 runtime failure, 2 bad arguments (argparse's convention), 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .simulator import FaultConfig, SimulatorConfig

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

Handler = Callable[[argparse.Namespace], int]
Configure = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Command:
    """One subcommand: its one-line help, how to add its arguments, and what runs it."""

    help: str
    configure: Configure
    handler: Handler


class UsageError(Exception):
    """A bad argument found after parsing (e.g. a missing environment variable); exits 2."""


# --- argument types ---------------------------------------------------------------------------------
def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be an integer, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 0 and 65535, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:  # also rejects NaN
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _faults(text: str) -> FaultConfig:
    from .simulator import FaultConfig

    try:
        return FaultConfig.parse_spec(text)
    except ValueError as err:  # pydantic's ValidationError is a ValueError too
        raise argparse.ArgumentTypeError(f"invalid fault spec {text!r}: {_one_line(err)}") from None


def _one_line(err: Exception) -> str:
    errors = getattr(err, "errors", None)
    if callable(errors):  # pydantic ValidationError: "field: message; field: message"
        try:
            items = errors()
            return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in items)
        except Exception:
            pass
    return str(err).splitlines()[0] if str(err) else type(err).__name__


# --- simulator ----------------------------------------------------------------------------------------
def _configure_simulator(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Serve the local Graph API simulator. The first line on stdout is one JSON object with the url, "
        "access_token, ad_account_ids and page_ids a client needs; it serves until SIGINT or SIGTERM."
    )
    parser.add_argument(
        "--port", type=_port, required=True, metavar="PORT", help="TCP port; 0 picks a free one"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--latency-ms",
        type=_non_negative_float,
        metavar="N",
        help="added latency per HTTP request (wins over latency_ms in --faults)",
    )
    parser.add_argument(
        "--jitter-ms", type=_non_negative_float, metavar="N", help="uniform +/- jitter on the latency"
    )
    parser.add_argument(
        "--time-scale",
        type=_positive_float,
        metavar="X",
        help="virtual seconds per real second (3600 lets an hour's quota window pass in a second)",
    )
    parser.add_argument(
        "--faults",
        type=_faults,
        metavar="SPEC",
        help="fault injection, e.g. transient=0.05,null=0.02,drop=0.01,http5xx=0.01,throttle=0.01",
    )
    parser.add_argument("--seed", type=int, metavar="N", help="seed for fault injection (runs reproduce)")
    parser.add_argument(
        "--app-secret-env",
        metavar="VAR",
        help="require appsecret_proof, with the app secret read from environment variable VAR",
    )
    parser.add_argument("--quota", type=_positive_int, metavar="N", help="override the per-hour call quota")
    parser.add_argument(
        "--tier",
        choices=("development_access", "standard_access"),
        help="access tier of the simulated app (sets the rate-limit quota)",
    )


def _simulator_config(args: argparse.Namespace) -> SimulatorConfig:
    from pydantic import SecretStr

    from .simulator import FaultConfig, SimulatorConfig

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


def _run_simulator(args: argparse.Namespace) -> int:
    config = _simulator_config(args)
    return asyncio.run(_serve_simulator(config, args.host, args.port))


async def _serve_simulator(config: SimulatorConfig, host: str, port: int) -> int:
    from .simulator import SimulatorServer
    from .simulator.server import start_info

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
            print(f"bulk-engine simulator: cannot listen on {host}:{port}: {err}", file=sys.stderr)
            return EXIT_FAILURE
        info = start_info(server.core, _connect_url(host, server.port))
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()
        print(f"bulk-engine simulator: serving {info['url']} (Ctrl-C to stop)", file=sys.stderr, flush=True)
        await stop.wait()
        print("bulk-engine simulator: stopping", file=sys.stderr, flush=True)
    finally:
        await server.stop()
        for sig in installed:
            loop.remove_signal_handler(sig)
    return EXIT_OK


def _connect_url(host: str, port: int) -> str:
    """The URL a local client dials: a wildcard bind is reachable on loopback; IPv6 gets brackets."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


# --- the command table -------------------------------------------------------------------------------
def _configure_demo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--report", default="reports/demo-report.json", help="where to write the JSON report")


def _run_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .demo import run_demo

    return asyncio.run(run_demo(Path(args.report)))


COMMANDS: dict[str, Command] = {
    "demo": Command(
        "run a demo bulk job end to end against the embedded simulator",
        _configure_demo,
        _run_demo,
    ),
    "simulator": Command(
        help="serve the local Graph API simulator", configure=_configure_simulator, handler=_run_simulator
    ),
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("meta-bulk-engine")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bulk-engine",
        description="Bulk engine for the Meta Marketing API, with a local Graph API simulator.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        sub = subparsers.add_parser(name, help=command.help)
        command.configure(sub)
        sub.set_defaults(handler=command.handler, subparser=sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``bulk-engine`` and ``python -m bulk_engine``; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits 2 on bad arguments and 0 after --help/--version
        return exit_.code if isinstance(exit_.code, int) else (EXIT_OK if exit_.code is None else EXIT_USAGE)
    handler: Handler = args.handler
    try:
        return handler(args)
    except UsageError as err:
        args.subparser.print_usage(sys.stderr)
        print(f"{args.subparser.prog}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
