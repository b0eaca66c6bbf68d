"""Before a run sends anything: can the Graph URL be reached at all?

Why: a wrong ``--graph-url`` or a simulator that is not running would otherwise surface as every batch
retried with backoff for several seconds and then failed. A TCP connect (no request, no token on the wire,
no quota) answers within a couple of seconds and the run stops with a message naming the URL.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import anyio

__all__ = ["CONNECT_TIMEOUT_S", "connect_problem", "unreachable_message"]

CONNECT_TIMEOUT_S = 3.0
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


async def connect_problem(graph_url: str, limit_s: float = CONNECT_TIMEOUT_S) -> str | None:
    """``None`` when a TCP connection to the URL's host and port opens, else why not ("connection refused")."""
    parts = urlsplit(graph_url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as err:
        return str(err)
    try:
        with anyio.fail_after(limit_s):
            stream = await anyio.connect_tcp(host, port)
    except TimeoutError:
        return f"no answer within {limit_s:g} s"
    except socket.gaierror as err:
        return f"host not found: {err.strerror or err}"
    except OSError as err:
        cause = (
            err.__cause__ if isinstance(err.__cause__, OSError) else err
        )  # anyio wraps the attempts' errors
        if isinstance(cause.errno, int) and cause.errno > 0:
            return os.strerror(cause.errno).lower()
        return str(cause) or "connection failed"
    await stream.aclose()
    return None


def unreachable_message(graph_url: str, reason: str) -> str:
    """What a person reads: the URL, why, that nothing was sent, and what to check."""
    parts = urlsplit(graph_url)
    host = parts.hostname or ""
    if host in LOOPBACK:
        try:
            port: int | None = parts.port
        except ValueError:  # EngineConfig refuses such a URL; a message must not crash on one anyway
            port = None
        hint = (
            "is the simulator running? Start one with `bulk-engine simulator --port "
            f"{port if port is not None else 'PORT'}` (its first line says the URL), or fix --graph-url"
        )
    else:
        hint = "check --graph-url (or META_GRAPH_URL), the network and any proxy"
    return (
        f"cannot connect to {graph_url} ({reason}) — {hint}. Nothing was sent; running the job again is safe."
    )
