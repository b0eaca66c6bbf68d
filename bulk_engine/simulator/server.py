"""The simulator's HTTP face: an aiohttp application speaking the Graph API wire format.

It peels the wire format off each request (version prefix, query/form/multipart/JSON parameters, token
from ``access_token``, a JSON body key or ``Authorization: Bearer``), hands one Graph call or a batch to
:class:`~bulk_engine.simulator.graph.GraphCore`, and applies the transport-level faults (latency, HTTP
5xx, connection dropped after commit). ``/__sim__/…`` is the inspection API for tests and users' CI.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from aiohttp import BodyPartReader, web

from .batch import parse_batch, run_batch
from .config import FaultConfig, SimulatorConfig
from .errors import GraphAPIError
from .graph import VERSION_RE, GraphCore, GraphRequest, GraphResponse

T = TypeVar("T")
JSON_CT = "application/json; charset=UTF-8"
CORE_KEY = web.AppKey("core", GraphCore)


def create_app(core: GraphCore) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[CORE_KEY] = core
    app.router.add_get("/__sim__/info", _info)
    app.router.add_get("/__sim__/store", _store)
    app.router.add_get("/__sim__/calls", _calls)
    app.router.add_get("/__sim__/requests", _requests)
    app.router.add_post("/__sim__/clock/advance", _advance)
    app.router.add_post("/__sim__/faults", _faults)
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
    }
    core.http_requests.append(record)
    latency = core.faults.latency_s()
    if latency:
        await asyncio.sleep(latency)
    status_5xx = core.faults.http_5xx()
    if status_5xx is not None:
        record["status"] = status_5xx
        return web.Response(
            status=status_5xx, text="<html><body>Service Unavailable</body></html>", content_type="text/html"
        )
    try:
        params, files = await _read_params(request)
    except GraphAPIError as err:
        record["status"] = err.http_status
        return _json(GraphResponse(err.http_status, err.body()), core)
    token = _token(request, params)
    proof = params.pop("appsecret_proof", None)
    path = request.path.strip("/")
    first, _, rest = path.partition("/")
    version: str | None = None
    if VERSION_RE.match(first):
        version, path = first, rest
    method = request.method.upper()
    if method == "POST" and "batch" in params:
        record["batch"] = True
        response = _batch(core, params, token, proof, version, seq, files, record, str(request.url.origin()))
    else:
        method = str(params.pop("method", method)).upper() if method == "POST" else method
        record["ops"] = 1
        response = core.call(
            GraphRequest(
                method=method,
                path=path,
                params=params,
                token=token,
                version=version,
                appsecret_proof=proof,
                files=files,
                base_url=str(request.url.origin()),
            ),
            http_request=seq,
        )
    record["status"] = response.status
    if method != "GET" and core.faults.drop_after_commit():
        record["dropped"] = True
        if request.transport is not None:
            request.transport.abort()
        raise ConnectionResetError("simulated connection drop after commit")
    return _json(response, core)


def _batch(
    core: GraphCore,
    params: dict[str, Any],
    token: str | None,
    proof: str | None,
    version: str | None,
    seq: int,
    files: dict[str, bytes],
    record: dict[str, Any],
    base_url: str,
) -> GraphResponse:
    try:
        core.authenticate(token, proof)  # "You must include an access token as a top level parameter"
        if version is not None:
            core.resolve_version(version)
        ops = parse_batch(params.get("batch"), core.config.max_batch_ops)
    except GraphAPIError as err:
        return GraphResponse(err.http_status, err.body(), dict(err.extra_headers))
    record["ops"] = len(ops)
    include = str(params.get("include_headers", "true")).lower() not in ("false", "0")
    body = run_batch(
        core,
        ops,
        token=token,
        proof=proof,
        version=version,
        include_headers=include,
        http_request=seq,
        files=files,
        base_url=base_url,
    )
    return GraphResponse(200, body, core.usage_headers(None))


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
                    files[part.name] = bytes(await part.read())
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
    token = params.pop("access_token", None)
    if token:
        return str(token)
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    return None


def _json(response: GraphResponse, core: GraphCore) -> web.Response:
    headers = {
        "facebook-api-version": core.config.default_version,
        "x-fb-rev": "1020304050",
        "x-fb-trace-id": "Sim" + str(len(core.http_requests)),
        "x-fb-debug": "simulated",
        **response.headers,
    }
    return web.Response(
        status=response.status,
        text=json.dumps(response.body),
        headers=headers,
        content_type="application/json",
        charset="UTF-8",
    )


# --- inspection API -------------------------------------------------------------------------------
async def _info(request: web.Request) -> web.Response:
    return web.json_response(start_info(request.app[CORE_KEY], str(request.url.origin())))


async def _store(request: web.Request) -> web.Response:
    types = [t for t in request.query.get("type", "").split(",") if t] or None
    return web.json_response(request.app[CORE_KEY].store.snapshot(types))


async def _calls(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    return web.json_response([vars(c) for c in core.calls])


async def _requests(request: web.Request) -> web.Response:
    return web.json_response(request.app[CORE_KEY].http_requests)


async def _advance(request: web.Request) -> web.Response:
    body = await request.json()
    now = request.app[CORE_KEY].clock.advance(float(body.get("seconds", 0)))
    return web.json_response({"now": now})


async def _faults(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    core.set_faults(FaultConfig(**(await request.json())))
    return web.json_response({"faults": core.faults.config.model_dump()})


def start_info(core: GraphCore, url: str) -> dict[str, Any]:
    """The one-line JSON a client needs to connect (DESIGN.md: simulator start line)."""
    return {
        "url": url,
        "access_token": core.config.access_tokens[0].get_secret_value(),
        "ad_account_ids": list(core.config.ad_account_ids),
        "page_ids": list(core.config.page_ids),
        "instagram_actor_ids": list(core.config.instagram_actor_ids),
    }


# --- running it ------------------------------------------------------------------------------------
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
        self._runner = web.AppRunner(create_app(self.core), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server  # aiohttp exposes the bound port only here
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
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
