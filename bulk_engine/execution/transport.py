"""One pooled aiohttp session to the Graph API; tokens travel in the POST body, never in URLs or logs.

Every batch is ``POST {graph_url}/{version}/`` with form fields ``access_token``, ``batch``,
``include_headers`` and, when an app secret is configured, ``appsecret_proof`` (S003 §Verify Graph API
Calls with appsecret_proof). Transport failures become :class:`~bulk_engine.errors.TransportError` with
``sent`` telling whether the server may have run the request (outcome unknown): a failed connect (refused,
DNS, TLS handshake) sent nothing and is safe to retry; a connection lost or a timeout after sending leaves the
outcome unknown. Messages never include the request body, so they cannot leak the token.

Hostile answers (issue "Exactly-once under any answer"):

* Redirects are never followed (``allow_redirects=False``): Graph answers API calls itself and never
  redirects them, and following a 307/308 would re-send the token and the batch to whatever origin the
  ``Location`` names. A 3xx raises ``TransportError(sent=True)`` naming the status and the (scrubbed)
  ``Location``: the server may have acted before answering, so the engine reconciles.
* Connecting is bounded by ``sock_connect`` (at most :data:`CONNECT_TIMEOUT_S`), and a connect-phase
  timeout (``aiohttp.ConnectionTimeoutError``) sent nothing: ``sent=False``. A timeout after the
  connection was made (``SocketTimeoutError`` or the total timeout) stays ``sent=True``. ``connect`` is
  left unset because it also counts waiting for a free pooled connection, which is not a failure.
* A body above :data:`MAX_BODY_BYTES` (decompressed) raises ``TransportError(sent=True)`` instead of
  filling memory; a body that is not valid in its charset is decoded with replacement characters.

Files (image uploads): a batch that carries files goes out as ``multipart/form-data`` — the same fields
plus one part per file, named as the ops' ``attached_files`` name them (S003 §Batch Requests → Upload
Binary Data); every other request stays ``application/x-www-form-urlencoded``. ``bytes_sent`` counts the
request bodies' bytes (benchmarks compare upload strategies with it).
"""

from __future__ import annotations

import codecs
import io
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bulk_engine.config import EngineConfig
from bulk_engine.errors import TransportError
from bulk_engine.protocol.batch import form_urlencode
from bulk_engine.scrub import MIN_SECRET, spellings

_FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}

MAX_BODY_BYTES = 64 * 1024 * 1024
"""The largest answer read: a full batch of 50 answers is far smaller; more is hostile or broken."""
CONNECT_TIMEOUT_S = 10.0
"""Upper bound of one connect attempt (TCP and TLS), capped by ``request_timeout_s``."""
_LOCATION_CHARS = 200
# aiohttp >= 3.10 raises ConnectionTimeoutError for a timeout while getting a connection; older versions
# raise a plain ServerTimeoutError there, indistinguishable from a read timeout, which stays sent=True.
_CONNECT_TIMEOUTS: tuple[type[BaseException], ...] = tuple(
    cls for cls in (getattr(aiohttp, "ConnectionTimeoutError", None),) if cls is not None
)
_SECRET_QUERY = re.compile(r"(?i)((?:access_token|appsecret_proof|client_secret)=)[^&#\s]*")


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


def redirect_target(location: str | None, secrets: tuple[str, ...] = ()) -> str:
    """``Location`` fit for a message: secret query values and the caller's secrets replaced by
    ``***``, control characters escaped, cut to 200 characters (it comes from an untrusted server)."""
    if not location:
        return "(no Location)"
    text = _SECRET_QUERY.sub(r"\1***", location)
    for secret in secrets:
        if len(secret) >= MIN_SECRET:  # a shorter one is no credential; replacing it would shred the URL
            for spelling in sorted(spellings(secret), key=len, reverse=True):
                text = text.replace(spelling, "***")
    text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text[: _LOCATION_CHARS * 2])
    return text if len(text) <= _LOCATION_CHARS else text[:_LOCATION_CHARS] + "…"


def decode_body(data: bytes, charset: str | None) -> str:
    """The body as text in its declared charset (UTF-8 by default, as Graph sends JSON); bytes that
    do not decode become U+FFFD instead of failing the answer."""
    encoding = "utf-8"
    if charset:
        try:
            encoding = codecs.lookup(charset).name
        except LookupError:
            pass
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return data.decode(encoding, errors="replace")


async def read_bounded(resp: aiohttp.ClientResponse, limit: int | None = None) -> bytes:
    """The whole body, or ``TransportError(sent=True)`` once it exceeds ``limit`` (default
    :data:`MAX_BODY_BYTES`) bytes: checked against ``Content-Length`` first, then while reading."""
    limit = MAX_BODY_BYTES if limit is None else limit
    declared = resp.content_length
    if declared is not None and declared > limit:
        raise TransportError(
            f"HTTP {resp.status} answer of {declared} bytes exceeds {limit} bytes", sent=True
        )
    body = bytearray()
    async for chunk in resp.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise TransportError(f"HTTP {resp.status} answer exceeds {limit} bytes", sent=True)
    return bytes(body)


@dataclass(frozen=True)
class FilePart:
    """One file of a multipart request: its library name and content (never logged)."""

    filename: str
    content: bytes = field(repr=False)
    content_type: str = "application/octet-stream"


class GraphTransport:
    """Async context manager owning the ``aiohttp.ClientSession``."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._session: aiohttp.ClientSession | None = None
        self.http_requests = 0
        self.bytes_sent = 0

    async def __aenter__(self) -> GraphTransport:
        connector = aiohttp.TCPConnector(
            limit=self.config.governor.max_total_concurrency, ttl_dns_cache=300, enable_cleanup_closed=True
        )
        total = self.config.request_timeout_s
        timeout = aiohttp.ClientTimeout(total=total, sock_connect=min(CONNECT_TIMEOUT_S, total))
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

    def _body(
        self, fields: dict[str, str], files: Mapping[str, FilePart] | None
    ) -> tuple[Any, dict[str, str]]:
        """The request body and its headers: url-encoded, or multipart when there are files."""
        if not files:
            form = form_urlencode(self._form(fields)).encode()  # aiohttp's urlencode costs ~11 µs per call
            self.bytes_sent += len(form)
            return form, _FORM_HEADERS
        data = aiohttp.FormData(quote_fields=False)
        for key, value in self._form(fields).items():
            data.add_field(key, value)
        for part, file in files.items():
            # A stream, not raw bytes: aiohttp writes it in chunks (raw bytes over 1 MiB — a video chunk —
            # warn "might lock the event loop", and fail under -W error); a new one on every attempt.
            content = io.BytesIO(file.content)
            data.add_field(part, content, filename=file.filename, content_type=file.content_type)
        writer = data()
        self.bytes_sent += writer.size or 0
        return writer, {}

    async def post(
        self, path: str, fields: dict[str, str], files: Mapping[str, FilePart] | None = None
    ) -> HttpAnswer:
        """POST form ``fields`` (plus token and proof) and ``files`` to ``{graph_url}/{version}/{path}``."""
        if self._session is None:
            raise RuntimeError("GraphTransport used outside 'async with'")
        url = f"{self.config.graph_url}/{self.config.api_version}/{path.lstrip('/')}"
        self.http_requests += 1
        try:
            payload, request_headers = self._body(fields, files)
            async with self._session.post(
                url, data=payload, headers=request_headers, allow_redirects=False
            ) as resp:
                status = resp.status
                if 300 <= status < 400:
                    raise TransportError(
                        self._redirect_message(status, resp.headers.get("Location")), sent=True
                    )
                text = decode_body(await read_bounded(resp), resp.charset)
                headers = {k: v for k, v in resp.headers.items()}
        except aiohttp.ClientConnectorError as err:  # before ClientOSError: it is one, but nothing was sent
            raise TransportError(connect_failure(self.config.graph_url, err), sent=False) from None
        except _CONNECT_TIMEOUTS:  # raised only while getting a connection: nothing was sent
            raise TransportError(
                f"connecting to {self.config.graph_url} timed out: nothing was sent", sent=False
            ) from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError) as err:
            raise TransportError(f"connection lost after sending ({type(err).__name__})", sent=True) from None
        except TimeoutError:
            raise TransportError("request timed out after sending", sent=True) from None
        except aiohttp.ClientError as err:
            raise TransportError(f"HTTP client error ({type(err).__name__})", sent=True) from None
        try:
            body: Any = json.loads(text) if text else None
        except (ValueError, RecursionError):  # not JSON, or nested too deep to decode: no Graph answer
            body = None
        return HttpAnswer(status, headers, body, text)

    def _redirect_message(self, status: int, location: str | None) -> str:
        target = redirect_target(location, self.config.credentials.secrets())
        return f"HTTP {status} redirect to {target} not followed (Graph API calls are never redirected)"

    async def post_batch(self, batch_json: str, files: Mapping[str, FilePart] | None = None) -> HttpAnswer:
        return await self.post("", {"batch": batch_json, "include_headers": "true"}, files)
