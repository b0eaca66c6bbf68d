"""The simulator's HTTP face: an aiohttp application speaking the Graph API wire format.

It peels the wire format off each request and hands one Graph call or a batch to
:class:`~bulk_engine.simulator.graph.GraphCore`:

- **Paths.** ``/v{N}.0/<path>`` or unversioned ``/<path>`` (→ ``default_version``); the response header
  ``facebook-api-version`` names the version that answered (S003 §Platform Versioning).
- **Parameters** from the query string, an url-encoded form, a multipart form (file parts become
  attachments for ``adimages`` / batch ``attached_files``) or a JSON object body (S001/S004 post JSON);
  the body wins over the query. ``method=DELETE|GET`` on a POST overrides the verb (Graph's override for
  clients without DELETE). Transport-only parameters (``format``, ``pretty``, ``suppress_http_code``,
  ``locale``, ``transport``) are removed; ``suppress_http_code=1`` answers HTTP 200 with the same body.
- **Token** from ``access_token`` (any of the above) or ``Authorization: Bearer`` / ``OAuth`` (S004),
  ``appsecret_proof`` from the parameters.
- **Transport faults** (seeded, ``faults.py``): latency ± jitter per HTTP request, HTTP 500/503 answered
  *before* the request runs, and a connection dropped *after* a write was committed (the client sees a
  disconnect; the object exists). The drop aborts the socket and lets aiohttp's own "client went away"
  path swallow the unwritable answer, so no traceback is logged.

``/__sim__/…`` is the inspection API for tests, demos and users' CI (it bypasses faults and limits):

===========================  ====================================================================
``GET  /__sim__/info``       the start-line JSON (url, access_token, ad_account_ids, page_ids, …)
``GET  /__sim__/store``      stored objects; ``?type=campaign,adset`` filters by node type
``GET  /__sim__/calls``      the Graph call log (one entry per call / batch op / ``ids=`` id);
                             ``?since=N`` skips the first N, ``?http_request=SEQ`` filters
``GET  /__sim__/requests``   one entry per HTTP request: seq, method, path, ops, batch, status,
                             latency_ms, fault; ``?since=N``
``GET  /__sim__/clock``      ``{"now", "time_scale"}``
``POST /__sim__/clock/advance``  ``{"seconds": S}`` jumps the virtual clock forward
``GET|POST /__sim__/faults`` read / replace the fault config: a FaultConfig JSON object or
                             ``{"spec": "transient=0.05,…"}``; answers the config and injected counts
``GET  /__sim__/ratelimit``  per account and use case: calls, quota, pct, blocked, regain_s;
                             ``?account=act_…``
===========================  ====================================================================
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from aiohttp import BodyPartReader, web
from pydantic import ValidationError

from .assets import UploadedFile
from .batch import parse_batch, run_batch
from .config import FaultConfig, SimulatorConfig
from .context import VERSION_RE, GraphRequest, GraphResponse
from .errors import GraphAPIError
from .graph import GraphCore

T = TypeVar("T")
CORE_KEY = web.AppKey("core", GraphCore)
TRANSPORT_PARAMS = ("format", "pretty", "suppress_http_code", "locale", "transport")
_HTML_5XX = {
    500: "<html><body><h1>500 Internal Server Error</h1></body></html>",
    503: "<html><body><h1>503 Service Unavailable</h1></body></html>",
}


def create_app(core: GraphCore) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[CORE_KEY] = core
    app.router.add_get("/__sim__/info", _info)
    app.router.add_get("/__sim__/store", _store)
    app.router.add_get("/__sim__/calls", _calls)
    app.router.add_get("/__sim__/requests", _requests)
    app.router.add_get("/__sim__/clock", _clock)
    app.router.add_post("/__sim__/clock/advance", _advance)
    app.router.add_get("/__sim__/faults", _faults)
    app.router.add_post("/__sim__/faults", _faults)
    app.router.add_get("/__sim__/ratelimit", _ratelimit)
    app.router.add_route("*", "/{tail:.*}", _graph)
    return app


# --- Graph traffic --------------------------------------------------------------------------------
async def _graph(request: web.Request) -> web.StreamResponse:
    core = request.app[CORE_KEY]
    seq = len(core.http_requests) + 1
    record: dict[str, Any] = {
        "seq": seq,
        "method": request.method,
        "path": request.path,
        "ops": 0,
        "batch": False,
        "status": None,
        "time": core.clock.now(),
        "latency_ms": 0.0,
        "fault": None,
    }
    core.http_requests.append(record)
    latency = core.faults.latency_s()
    if latency:
        record["latency_ms"] = latency * 1000.0
        await asyncio.sleep(latency)
    status_5xx = core.faults.http_5xx()
    if status_5xx is not None:  # the front end fails: nothing runs
        record["status"] = status_5xx
        record["fault"] = "http_5xx"
        return web.Response(status=status_5xx, text=_HTML_5XX[status_5xx], content_type="text/html")
    try:
        params, files = await _read_params(request)
    except GraphAPIError as err:
        record["status"] = err.http_status
        return _json(GraphResponse(err.http_status, err.body()), core, None)
    token = _token(request, params)
    proof = params.pop("appsecret_proof", None)
    suppress = str(params.get("suppress_http_code", "")).lower() in ("1", "true")
    for key in TRANSPORT_PARAMS:
        params.pop(key, None)
    path = request.path.strip("/")
    first, _, rest = path.partition("/")
    version: str | None = None
    if VERSION_RE.match(first):
        version, path = first, rest
    method = request.method.upper()
    base_url = str(request.url.origin())
    if method == "POST" and "batch" in params:
        record["batch"] = True
        response = _batch(core, params, token, proof, version, seq, files, record, base_url)
    else:
        if method == "POST" and "method" in params:
            method = str(params.pop("method")).upper()
        record["ops"] = 1
        response = core.call(
            GraphRequest(
                method=method,
                path=path,
                params=params,
                token=token,
                version=version,
                appsecret_proof=str(proof) if proof is not None else None,
                files=files,
                base_url=base_url,
            ),
            http_request=seq,
        )
    record["status"] = response.status
    if method != "GET" and core.faults.drop_after_commit():
        # The write is committed; the answer is lost. Abort the socket and hand aiohttp a response it
        # cannot write: its "client disconnected" path swallows that quietly (no traceback logged).
        record["fault"] = "drop"
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=response.status)
    return _json(response, core, version, suppress=suppress)


def _batch(
    core: GraphCore,
    params: dict[str, Any],
    token: str | None,
    proof: Any,
    version: str | None,
    seq: int,
    files: dict[str, bytes],
    record: dict[str, Any],
    base_url: str,
) -> GraphResponse:
    """The batch endpoint's top level: token (+ proof) and version first, then the ops (``batch.py``)."""
    proof_text = str(proof) if proof is not None else None
    try:
        core.authenticate(token, proof_text)  # "You must include an access token as a top level parameter"
        core.resolve_version(version)
        ops = parse_batch(params.get("batch"), core.config.max_batch_ops)
    except GraphAPIError as err:
        headers = dict(err.extra_headers)
        headers.update(core.usage_headers(None))
        return GraphResponse(err.http_status, err.body(), headers)
    record["ops"] = len(ops)
    include = str(params.get("include_headers", "true")).lower() not in ("false", "0")
    first_call = len(core.calls)
    body = run_batch(
        core,
        ops,
        token=token,
        proof=proof_text,
        version=version,
        include_headers=include,
        http_request=seq,
        files=files,
        base_url=base_url,
    )
    accounts = [c.account_id for c in core.calls[first_call:] if c.account_id is not None]
    return GraphResponse(200, body, core.usage_headers(accounts or None))


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    params: dict[str, Any] = dict(request.query)
    files: dict[str, bytes] = {}
    if request.method in ("POST", "PUT", "DELETE") and request.can_read_body:
        ctype = request.content_type
        if ctype == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise GraphAPIError(code=100, message="(#100) The request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise GraphAPIError(code=100, message="(#100) The JSON body must be an object")
            params.update(body)
        elif ctype.startswith("multipart/"):
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                if part.filename:
                    files[part.name] = UploadedFile(await part.read(), part.filename)
                else:
                    params[part.name] = await part.text()
        else:
            post = await request.post()
            for key, value in post.items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                else:
                    params[key] = value
    return params, files


def _token(request: web.Request, params: dict[str, Any]) -> str | None:
    """``access_token`` (query, form or JSON body) first, then ``Authorization: Bearer|OAuth <token>``."""
    token = params.pop("access_token", None)
    if token:
        return str(token)
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    return None


def _json(
    response: GraphResponse, core: GraphCore, version: str | None, *, suppress: bool = False
) -> web.Response:
    headers = {
        "facebook-api-version": core.version_header(version),
        "x-fb-rev": "1020304050",
        "x-fb-trace-id": f"Sim{len(core.http_requests)}",
        "x-fb-debug": "simulated",
        **response.headers,
    }
    return web.Response(
        status=200 if suppress else response.status,
        text=json.dumps(response.body),
        headers=headers,
        content_type="application/json",
        charset="UTF-8",
    )


# --- inspection API -------------------------------------------------------------------------------
def _bad_request(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


def _int_query(request: web.Request, key: str) -> int | None:
    raw = request.query.get(key)
    if raw is None or raw == "":
        return None
    return int(raw)


async def _info(request: web.Request) -> web.Response:
    return web.json_response(start_info(request.app[CORE_KEY], str(request.url.origin())))


async def _store(request: web.Request) -> web.Response:
    types = [t for t in request.query.get("type", "").split(",") if t] or None
    return web.json_response(request.app[CORE_KEY].store.snapshot(types))


async def _calls(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    try:
        since = _int_query(request, "since") or 0
        http_request = _int_query(request, "http_request")
    except ValueError:
        return _bad_request("since and http_request must be integers")
    calls = core.calls[since:]
    if http_request is not None:
        calls = [c for c in calls if c.http_request == http_request]
    return web.json_response([vars(c) for c in calls])


async def _requests(request: web.Request) -> web.Response:
    try:
        since = _int_query(request, "since") or 0
    except ValueError:
        return _bad_request("since must be an integer")
    return web.json_response(request.app[CORE_KEY].http_requests[since:])


async def _clock(request: web.Request) -> web.Response:
    clock = request.app[CORE_KEY].clock
    return web.json_response({"now": clock.now(), "time_scale": clock.time_scale})


async def _advance(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        seconds = float(body.get("seconds", 0)) if isinstance(body, dict) else None
        if seconds is None:
            raise ValueError("the body must be an object")
        now = request.app[CORE_KEY].clock.advance(seconds)
    except ValueError as err:  # bad JSON, non-numeric or negative seconds
        return _bad_request(f"expected {{'seconds': S >= 0}}: {err}")
    return web.json_response({"now": now})


async def _faults(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    if request.method == "POST":
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            spec = body.get("spec")
            faults = FaultConfig.parse_spec(str(spec)) if spec is not None else FaultConfig(**body)
        except (ValueError, ValidationError, TypeError) as err:
            return _bad_request(f"invalid fault configuration: {err}")
        core.set_faults(faults)
    return web.json_response(
        {"faults": core.faults.config.model_dump(mode="json"), "injected": dict(core.faults.injected)}
    )


async def _ratelimit(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    return web.json_response(core.rate_limiter.snapshot(request.query.get("account")))


def start_info(core: GraphCore, url: str) -> dict[str, Any]:
    """The one-line JSON a client needs to connect (DESIGN.md: simulator start line).

    With ``seed_campaigns`` it also carries ``seeded_campaigns``: ``{account: [first id, count]}``, the
    contiguous ids of each account's seeded campaigns.
    """
    info: dict[str, Any] = {
        "url": url,
        "access_token": core.config.access_tokens[0].get_secret_value(),
        "ad_account_ids": list(core.config.ad_account_ids),
        "page_ids": list(core.config.page_ids),
        "instagram_actor_ids": list(core.config.instagram_actor_ids),
        "api_version": core.config.default_version,
    }
    if core.seeded_campaigns:
        info["seeded_campaigns"] = {act: list(span) for act, span in core.seeded_campaigns.items()}
    return info


# --- running it ------------------------------------------------------------------------------------
async def serve_app(
    app: web.Application, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, int]:
    """Serve ``app`` in the current event loop; returns its runner (``cleanup()`` stops it) and the bound
    port (``port=0`` picks a free one). Tests' own loopback servers use it too."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    for address in runner.addresses:  # the bound port when port=0
        if isinstance(address, tuple) and len(address) >= 2:
            return runner, int(address[1])
    return runner, port


class SimulatorServer:
    """Serve a :class:`GraphCore` on 127.0.0.1 inside the current event loop."""

    def __init__(self, config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.core = GraphCore(config or SimulatorConfig())
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> SimulatorServer:
        self._runner, self.port = await serve_app(create_app(self.core), self.host, self.port)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SimulatorServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def info(self) -> dict[str, Any]:
        return start_info(self.core, self.url)


class SimulatorThread:
    """A simulator on its own event loop in a daemon thread: for sync clients (the SDK) and fixtures.

    Inspection goes through :meth:`run`, which executes a function on the server's loop so tests never
    read the store while a request is mutating it.
    """

    def __init__(self, config: SimulatorConfig | None = None, port: int = 0) -> None:
        self._loop = asyncio.new_event_loop()
        self.server = SimulatorServer(config, port=port)
        self._thread = threading.Thread(target=self._loop.run_forever, name="graph-simulator", daemon=True)

    def start(self) -> SimulatorThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(timeout=30)
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def core(self) -> GraphCore:
        return self.server.core

    def info(self) -> dict[str, Any]:
        return self.server.info()

    def run(self, fn: Callable[[GraphCore], T]) -> T:
        """Run ``fn(core)`` on the server's loop and return its result (thread-safe inspection)."""

        async def call() -> T:
            return fn(self.server.core)

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout=30)

    def run_async(self, fn: Callable[[GraphCore], Coroutine[Any, Any, T]]) -> T:
        return asyncio.run_coroutine_threadsafe(fn(self.server.core), self._loop).result(timeout=30)
