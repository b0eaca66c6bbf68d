"""One pooled aiohttp session to the Graph API; tokens travel in the POST body, never in URLs or logs.

Every batch is ``POST {graph_url}/{version}/`` with form fields ``access_token``, ``batch``,
``include_headers`` and, when an app secret is configured, ``appsecret_proof`` (S003 §Verify Graph API
Calls with appsecret_proof). Transport failures become :class:`~bulk_engine.errors.TransportError` with
``sent`` telling whether the server may have run the request (outcome unknown): a failed connect (refused,
DNS, TLS handshake) sent nothing and is safe to retry; a connection lost or a timeout after sending leaves the
outcome unknown. Messages never include the request body, so they cannot leak the token.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import aiohttp

from bulk_engine.config import EngineConfig
from bulk_engine.errors import TransportError
from bulk_engine.protocol.batch import form_urlencode

_FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: Any  # parsed JSON, or None when the body was not JSON
    text: str


def connect_failure(graph_url: str, err: BaseException) -> str:
    """``cannot connect to URL (connection refused)``: why the connection failed, never the request body."""
    os_error = getattr(err, "os_error", None)
    number = getattr(os_error, "errno", None)
    if isinstance(number, int) and number > 0:
        reason = os.strerror(number)  # "Connection refused", not asyncio's "Connect call failed (…)"
    else:
        reason = getattr(os_error, "strerror", None) or type(err).__name__
    return f"cannot connect to {graph_url} ({str(reason).lower()}): nothing was sent"


class GraphTransport:
    """Async context manager owning the ``aiohttp.ClientSession``."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._session: aiohttp.ClientSession | None = None
        self.http_requests = 0

    async def __aenter__(self) -> GraphTransport:
        connector = aiohttp.TCPConnector(
            limit=self.config.governor.max_total_concurrency, ttl_dns_cache=300, enable_cleanup_closed=True
        )
        timeout = aiohttp.ClientTimeout(total=self.config.request_timeout_s)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, raise_for_status=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _form(self, extra: dict[str, str]) -> dict[str, str]:
        creds = self.config.credentials
        form = {"access_token": creds.access_token.get_secret_value(), **extra}
        proof = creds.appsecret_proof()
        if proof:
            form["appsecret_proof"] = proof
        return form

    async def post(self, path: str, fields: dict[str, str]) -> HttpAnswer:
        """POST form ``fields`` (plus token and proof) to ``{graph_url}/{version}/{path}``."""
        if self._session is None:
            raise RuntimeError("GraphTransport used outside 'async with'")
        url = f"{self.config.graph_url}/{self.config.api_version}/{path.lstrip('/')}"
        self.http_requests += 1
        try:
            form = form_urlencode(self._form(fields)).encode()  # aiohttp's urlencode costs ~11 µs per call
            async with self._session.post(url, data=form, headers=_FORM_HEADERS) as resp:
                text = await resp.text()
                headers = {k: v for k, v in resp.headers.items()}
                status = resp.status
        except aiohttp.ClientConnectorError as err:  # before ClientOSError: it is one, but nothing was sent
            raise TransportError(connect_failure(self.config.graph_url, err), sent=False) from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError) as err:
            raise TransportError(f"connection lost after sending ({type(err).__name__})", sent=True) from None
        except TimeoutError:
            raise TransportError("request timed out after sending", sent=True) from None
        except aiohttp.ClientError as err:
            raise TransportError(f"HTTP client error ({type(err).__name__})", sent=True) from None
        try:
            body: Any = json.loads(text) if text else None
        except ValueError:
            body = None
        return HttpAnswer(status, headers, body, text)

    async def post_batch(self, batch_json: str) -> HttpAnswer:
        return await self.post("", {"batch": batch_json, "include_headers": "true"})
