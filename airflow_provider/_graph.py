"""Read-only Graph API calls for the hook's connection test and the wait-only triggers.

The engine's transport only sends batches (POST); the provider needs single GETs that never write. The
token travels in an ``Authorization: Bearer`` header and ``appsecret_proof`` in the query string, so
neither the token nor the app secret can end up in a URL, an exception message or a log line.
Answers are classified with the engine's own wire-format helpers (``protocol.errors``/``usage``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from bulk_engine import EngineConfig, GraphError
from bulk_engine.protocol.errors import parse_graph_error
from bulk_engine.protocol.usage import UsageSnapshot, parse_usage_headers

T = TypeVar("T")

BUC_ADS_MANAGEMENT = "ads_management"


@dataclass(frozen=True)
class GraphRead:
    """One GET answer: HTTP status, parsed body, the Graph error (if any) and the usage headers."""

    status: int
    body: Any
    error: GraphError | None
    usage: UsageSnapshot

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 300

    def regain_after_s(self, account_id: str, buc_type: str = BUC_ADS_MANAGEMENT) -> float:
        """Seconds until ``account_id`` may be called again according to the headers (0: not blocked)."""
        return self.usage.regain_after_s(account_id, buc_type)

    def describe_error(self) -> str:
        if self.error is None:
            return f"HTTP {self.status}"
        err = self.error
        code = f"code {err.code}" + (f"/{err.error_subcode}" if err.error_subcode else "")
        return f"HTTP {self.status}, Graph {code}: {err.message}"


class GraphReadError(Exception):
    """The Graph API could not be reached (connection refused, timeout). Never carries secrets."""


async def graph_get(
    config: EngineConfig,
    path: str,
    params: Mapping[str, str] | None = None,
    *,
    account_id: str | None = None,
    timeout_s: float = 30.0,
) -> GraphRead:
    """``GET {graph_url}/{api_version}/{path}`` with ``params``; never raises for Graph errors."""
    creds = config.credentials
    query = dict(params or {})
    proof = creds.appsecret_proof()
    if proof:
        query["appsecret_proof"] = proof
    headers = {"Authorization": f"Bearer {creds.access_token.get_secret_value()}"}
    url = f"{config.graph_url}/{config.api_version}/{path.lstrip('/')}"
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, params=query, headers=headers) as resp,
        ):
            text = await resp.text()
            status = resp.status
            resp_headers = {k: v for k, v in resp.headers.items()}
    except TimeoutError:
        raise GraphReadError(f"GET {config.graph_url} timed out after {timeout_s:g} s") from None
    except aiohttp.ClientError as err:
        raise GraphReadError(f"cannot reach {config.graph_url} ({type(err).__name__})") from None
    try:
        body: Any = json.loads(text) if text else None
    except ValueError:
        body = None
    error = parse_graph_error(body, status) if status >= 400 or _has_error(body) else None
    if error is None and status >= 400:
        error = GraphError(message=f"HTTP {status}", http_status=status)
    return GraphRead(status, body, error, parse_usage_headers(resp_headers, account_id=account_id))


def _has_error(body: Any) -> bool:
    return isinstance(body, dict) and "error" in body


def run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine from synchronous code, also when this thread already runs an event loop."""

    async def main() -> T:
        return await factory()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()
