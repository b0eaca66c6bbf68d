"""The command line's argument types and the flags several subcommands share (Graph URL, timeouts, reports,
log format).

Why one module: each type checks its value while argparse parses (exit 2 with the flag named, before any
other work), and the same rule must hold for every subcommand that takes the flag.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

__all__ = [
    "DEFAULT_GRAPH_URL",
    "GRAPH_URL_ENV",
    "account",
    "add_output_options",
    "graph_url",
    "non_negative_float",
    "one_line",
    "positive_float",
    "positive_int",
]

GRAPH_URL_ENV = "META_GRAPH_URL"
DEFAULT_GRAPH_URL = "https://graph.facebook.com"


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:  # also rejects NaN
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def graph_url(text: str) -> str:
    """A usable Graph base URL, checked before anything else runs (the same rule as ``EngineConfig``)."""
    from bulk_engine.config import graph_url_problem

    problem = graph_url_problem(text)
    if problem is None:
        return text
    origin = f" (the value of ${GRAPH_URL_ENV})" if text == os.environ.get(GRAPH_URL_ENV) else ""
    raise argparse.ArgumentTypeError(f"{text!r}{origin} {problem}")


def account(text: str) -> str:
    if not re.fullmatch(r"act_\d+", text):
        raise argparse.ArgumentTypeError(f"an ad account id looks like act_1234567890, got {text!r}")
    return text


def one_line(err: Exception) -> str:
    """An exception as one line; a pydantic ``ValidationError`` as ``field: message; field: message``."""
    errors = getattr(err, "errors", None)
    if callable(errors):
        try:
            items = errors()
            return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in items)
        except Exception:
            pass
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def add_output_options(parser: argparse.ArgumentParser, *, graph: bool = True) -> None:
    """``--log-format``, and with ``graph`` the flags of a command that talks to Graph and writes reports."""
    if graph:
        parser.add_argument(
            "--graph-url",
            type=graph_url,
            default=os.environ.get(GRAPH_URL_ENV) or DEFAULT_GRAPH_URL,
            metavar="URL",
            help=f"Graph API base URL, e.g. a simulator's (default: ${GRAPH_URL_ENV} or {DEFAULT_GRAPH_URL}); "
            "http(s), a host, an optional port 1-65535, no query",
        )
        parser.add_argument(
            "--request-timeout",
            type=positive_float,
            metavar="SECONDS",
            help="give up on one HTTP request after this long (default: 120); a batch that timed out after "
            "it was sent has an unknown outcome: creates are looked up by their key before a re-send",
        )
        parser.add_argument(
            "--api-version",
            metavar="vNN.N",
            help="Graph API version (default: the engine's)",
        )
        parser.add_argument(
            "--time-scale",
            type=positive_float,
            default=1.0,
            metavar="X",
            help="only against a simulator started with --time-scale X: run the engine clock as fast",
        )
        parser.add_argument("--report", type=Path, metavar="PATH", help="write the JSON report here")
        parser.add_argument("--report-csv", type=Path, metavar="PATH", help="write the CSV report here")
        parser.add_argument(
            "--report-html",
            type=Path,
            metavar="PATH",
            help="write the HTML report here",
        )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="text: a live view on a terminal, plain lines otherwise; json: one JSON object per line",
    )
