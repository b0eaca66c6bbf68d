"""A hostile Graph front end in front of a real simulator, and the matrix cell that runs a job through it.

:class:`HostileFront` is a small aiohttp app on 127.0.0.1:0. It receives the engine's POSTs and, for a
seeded share of them (``rate``), applies its ``mode``: it either forwards the request to the simulator
("upstream ran": the writes are committed) or not, and answers the engine with a mangled answer. The other
requests are forwarded and answered faithfully. ``/__sim__/…`` is always forwarded untouched.

Modes (``MODES``; ``UPSTREAM_RUNS[mode]`` says whether the simulator ran the mangled request):

==========================  ==========================================================================
``faithful``                the control: every request forwarded and answered as the simulator did
``html502_before|_after``   an HTML 502 page; the simulator did not run / did run the batch
``text500_before|_after``   ``text/plain`` 500 "Internal Server Error"
``envelope_before|_after``  a top-level ``{"error": {"code": 1|2, "message": "An unknown error
                            occurred", "type": "OAuthException"}}`` with HTTP 200 or 500 (drawn per
                            request)
``truncated_json``          the real body cut in half
``empty_array``             ``[]``
``short_array``             the real array minus its last half (at least one entry dropped)
``long_array``              the real array plus junk entries (fake successes, ``null``, strings)
``reset_mid_body``          the real status and headers, half the body, then the connection is reset
``junk_entries``            some entries replaced with ``[1,2]``, ``"str"``, ``{"code": 200}`` (no body),
                            ``{"code": 200, "body": "not json"}``
``parent_null_child_ok``    in a batch where an op references another op of the batch
                            (``{result=NAME:…}``), the referenced parent's entry is ``null`` and the
                            child's success kept (batches without such a pair are answered faithfully)
``huge_usage``              the real answer; every usage header (outer and per entry) replaced with
                            400-digit ``call_count`` / ``estimated_time_to_regain_access`` / percentages
``nan_usage``               … with ``NaN`` / ``Infinity`` / ``-Infinity`` values
``malformed_usage``         … with junk (wrong shapes, truncated JSON, non-JSON, nested junk)
``absurd_regain``           the real answer with throttle-looking usage headers: 100 % and
                            ``estimated_time_to_regain_access`` of 10**9 minutes
``redirect_301|302|307|308``  a redirect to :class:`OtherOrigin` (another port: another origin); the
                            simulator did not run the request. The other origin counts what it gets.
``echo_secrets``            the simulator runs the first half of the batch's entries; the others are
                            error entries (code 100) whose message echoes the request's
                            ``access_token`` and ``appsecret_proof`` form values
==========================  ==========================================================================

:func:`run_cell` runs one matrix cell: a small job (three campaign → ad set → creative → ad trees on two
ad accounts plus status updates) through the front end with a fast virtual clock, then the SAME job (same
``job_id``, same journal or again none) directly against the healthy simulator, and reports duplicates per
op (objects counted by idempotency key, or by name when the objects carry no key), ops not succeeded, hits
on the other origin, exceptions that escaped ``engine.run`` and tracebacks logged at WARNING or above.
Used by ``test_hostile_matrix.py`` and ``bench/hostile.py``.
"""

from __future__ import annotations

import io
import json
import logging
import random
import re
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp
import anyio
from aiohttp import web
from engine_support import status_op, tree_ops

from bulk_engine import (
    BulkEngine,
    Credentials,
    EngineConfig,
    GovernorConfig,
    JobResult,
    Operation,
    OutcomeState,
    Ref,
    RetryConfig,
    ScaledClock,
)
from bulk_engine.persistence import KeyScheme, SqliteJournal
from bulk_engine.persistence.keys import key_in_name
from bulk_engine.simulator import SimulatorConfig, SimulatorServer
from bulk_engine.simulator.server import serve_app

MODES: tuple[str, ...] = (
    "faithful",
    "html502_before",
    "html502_after",
    "text500_before",
    "text500_after",
    "envelope_before",
    "envelope_after",
    "truncated_json",
    "empty_array",
    "short_array",
    "long_array",
    "reset_mid_body",
    "junk_entries",
    "parent_null_child_ok",
    "huge_usage",
    "nan_usage",
    "malformed_usage",
    "absurd_regain",
    "redirect_301",
    "redirect_302",
    "redirect_307",
    "redirect_308",
    "echo_secrets",
)
HOSTILE_MODES = MODES[1:]
_NOT_RUN = {"html502_before", "text500_before", "envelope_before"} | {
    f"redirect_{code}" for code in (301, 302, 307, 308)
}
UPSTREAM_RUNS: dict[str, bool] = {mode: mode not in _NOT_RUN for mode in MODES}
"""Whether the simulator ran a request the mode mangled (``echo_secrets``: the first half of it)."""

USAGE_HEADERS = ("X-Business-Use-Case-Usage", "X-App-Usage", "X-Ad-Account-Usage")
_USAGE_LOWER = {name.lower(): name for name in USAGE_HEADERS}
_HOP_BY_HOP = {"content-length", "content-encoding", "transfer-encoding", "connection", "date", "server"}
_REF_RE = re.compile(r"\{result=([A-Za-z0-9_.\-]+):")
_ACT_RE = re.compile(r"act_(\d+)")
HUGE = "9" * 400
REGAIN_MINUTES = 10**9
HTML_502 = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>Bad Gateway</h1><p>The upstream server returned an invalid response.</p></body></html>"
)
TEXT_500 = "Internal Server Error"

TOKEN = "HOSTILE-TOKEN-5e1f0c"
APP_SECRET = "HOSTILE-SECRET-9b2c7d"


# --- servers ---------------------------------------------------------------------------------------
class _Served:
    """An aiohttp app on 127.0.0.1:0."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _app(self) -> web.Application:
        raise NotImplementedError

    async def start(self) -> Any:
        self._runner, self.port = await serve_app(self._app())
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class OtherOrigin(_Served):
    """The target of the redirects: another port, so another origin. It must get nothing.

    It counts every request it gets (method, path, whether the body carried the access token) and
    answers an HTML 404 page.
    """

    def __init__(self) -> None:
        super().__init__()
        self.hits: list[dict[str, Any]] = []

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.hits.append(
            {
                "method": request.method,
                "path": request.path_qs,
                "bytes": len(body),
                "token_in_body": TOKEN.encode() in body or b"access_token" in body,
            }
        )
        return web.Response(status=404, text="<html><body>not here</body></html>", content_type="text/html")


@dataclass
class _Upstream:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class HostileFront(_Served):
    """The hostile front end: ``HostileFront(sim_url, mode, rate=1.0, seed=0, other_origin=url)``.

    ``stats`` counts requests, forwarded ones, mangled ones (``mangled:<mode>[:<variant>]``) and
    upstream runs.
    """

    def __init__(
        self,
        upstream_url: str,
        mode: str,
        *,
        rate: float = 1.0,
        seed: int = 0,
        other_origin: str | None = None,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
        if mode.startswith("redirect_") and other_origin is None:
            raise ValueError("redirect modes need other_origin")
        self.upstream_url = upstream_url.rstrip("/")
        self.mode = mode
        self.rate = rate
        self.other_origin = other_origin.rstrip("/") if other_origin else None
        self.rng = random.Random(f"{mode}/{rate}/{seed}")
        self.stats: Counter[str] = Counter()
        self._session: aiohttp.ClientSession | None = None

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def start(self) -> HostileFront:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        await super().start()
        return self

    async def stop(self) -> None:
        await super().stop()
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def mangled(self) -> int:
        return sum(n for key, n in self.stats.items() if key.startswith("mangled:"))

    # --- request handling ----------------------------------------------------------------------
    async def _forward(self, request: web.Request, body: bytes) -> _Upstream:
        assert self._session is not None
        headers = {}
        if request.content_type:
            headers["Content-Type"] = request.headers.get("Content-Type", request.content_type)
        self.stats["upstream_runs"] += 1
        async with self._session.request(
            request.method,
            self.upstream_url + request.path_qs,
            data=io.BytesIO(body),  # streamed: raw bytes over 1 MiB (a video chunk) warn in aiohttp
            headers=headers,
            allow_redirects=False,
        ) as resp:
            data = await resp.read()
            out = {k: v for k, v in resp.headers.items() if k.lower() not in _HOP_BY_HOP}
            return _Upstream(resp.status, out, data)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if request.path.startswith("/__sim__"):
            return _answer(await self._forward(request, body))
        self.stats["requests"] += 1
        if self.mode == "faithful" or self.rng.random() >= self.rate:
            self.stats["forwarded"] += 1
            return _answer(await self._forward(request, body))
        return await self._mangle(request, body)

    def _count(self, variant: str = "") -> None:
        self.stats[f"mangled:{self.mode}{':' + variant if variant else ''}"] += 1

    async def _mangle(self, request: web.Request, body: bytes) -> web.StreamResponse:
        mode, rng = self.mode, self.rng
        if mode.startswith("redirect_"):
            self._count()
            assert self.other_origin is not None
            return web.Response(
                status=int(mode.rsplit("_", 1)[1]),
                headers={"Location": self.other_origin + request.path_qs},
                text="moved",
            )
        if mode == "echo_secrets":
            return await self._echo_secrets(request, body)
        if mode.endswith("_before"):
            up: _Upstream | None = None
        else:
            up = await self._forward(request, body)
        if mode.startswith("html502"):
            self._count()
            return web.Response(status=502, text=HTML_502, content_type="text/html")
        if mode.startswith("text500"):
            self._count()
            return web.Response(status=500, text=TEXT_500, content_type="text/plain")
        if mode.startswith("envelope"):
            status, code = rng.choice((200, 500)), rng.choice((1, 2))
            self._count(f"{status}/{code}")
            envelope = {
                "error": {
                    "code": code,
                    "message": "An unknown error occurred"
                    if code == 1
                    else "Service temporarily unavailable",
                    "type": "OAuthException",
                    "fbtrace_id": "AhostileTrace",
                }
            }
            return web.json_response(envelope, status=status)
        assert up is not None
        data = up.json()
        if mode == "truncated_json":
            self._count()
            return _answer(up, up.body[: len(up.body) // 2])
        if mode == "reset_mid_body":
            self._count()
            return await _reset_mid_body(request, up)
        if not isinstance(data, list) or not data:  # an error envelope, a non-batch call, []: passed on
            if mode in ("huge_usage", "nan_usage", "malformed_usage", "absurd_regain"):
                self._count("non-array")
                return _answer(up, headers=self._usage_headers(up))
            self.stats["passed:not-an-array"] += 1
            return _answer(up)
        if mode == "empty_array":
            self._count()
            return _answer(up, b"[]")
        if mode == "short_array":
            self._count()
            return _answer(up, json.dumps(data[: len(data) // 2]).encode())
        if mode == "long_array":
            self._count()
            junk: list[Any] = [
                {"code": 200, "body": json.dumps({"id": "999999999999999"})},
                None,
                "junk",
                {"code": 200, "body": json.dumps({"id": "888888888888888", "success": True})},
            ]
            return _answer(up, json.dumps(data + junk[: rng.randint(1, len(junk))]).encode())
        if mode == "junk_entries":
            self._count()
            junk_forms: list[Any] = [[1, 2], "str", {"code": 200}, {"code": 200, "body": "not json"}]
            picks = [i for i in range(len(data)) if rng.random() < 0.5] or [rng.randrange(len(data))]
            for i in picks:
                data[i] = rng.choice(junk_forms)
            return _answer(up, json.dumps(data).encode())
        if mode == "parent_null_child_ok":
            return self._parent_null(up, data, body)
        # the usage modes: the real answer, usage headers replaced outside and in every entry
        self._count()
        for entry in data:
            if isinstance(entry, dict) and isinstance(entry.get("headers"), list):
                replaced = self._usage_headers(up)
                entry["headers"] = [
                    h
                    for h in entry["headers"]
                    if not (isinstance(h, dict) and str(h.get("name", "")).lower() in _USAGE_LOWER)
                ] + [
                    {"name": name, "value": value}
                    for name, value in replaced.items()
                    if name in USAGE_HEADERS
                ]
        return _answer(up, json.dumps(data).encode(), headers=self._usage_headers(up))

    def _parent_null(self, up: _Upstream, data: list[Any], body: bytes) -> web.StreamResponse:
        ops = _batch_of(body)
        text_of = [json.dumps(op) if isinstance(op, dict) else "" for op in ops]
        names = [op.get("name") if isinstance(op, dict) else None for op in ops]
        parents = {
            i
            for i, name in enumerate(names)
            if name and any(f"{{result={name}:" in text for j, text in enumerate(text_of) if j != i)
        }
        if not parents:
            self.stats["passed:no-parent-in-batch"] += 1
            return _answer(up)
        self._count()
        for i in parents:
            if i < len(data):
                data[i] = None
        return _answer(up, json.dumps(data).encode())

    async def _echo_secrets(self, request: web.Request, body: bytes) -> web.StreamResponse:
        form = _form_of(request, body)
        ops = _batch_of(body)
        if not ops:  # not a batch: forward it, then answer an error echoing the secrets
            self._count("single")
            await self._forward(request, body)
            return web.json_response(_echo_error(form), status=400)
        self._count()
        keep = len(ops) // 2
        entries: list[Any] = []
        headers: dict[str, str] = {}
        if keep:
            fields = {**form, "batch": json.dumps(ops[:keep])}
            up = await self._forward_form(request, fields)
            headers = up.headers
            got = up.json()
            entries = list(got) if isinstance(got, list) else [None] * keep
        for _ in ops[keep:]:
            entries.append(
                {
                    "code": 400,
                    "headers": [
                        {
                            "name": "WWW-Authenticate",
                            "value": f'OAuth "Facebook Platform" "{form.get("access_token")}"',
                        }
                    ],
                    "body": json.dumps(_echo_error(form)),
                }
            )
        return web.Response(
            status=200,
            text=json.dumps(entries),
            headers={k: v for k, v in headers.items() if k.lower() != "content-type"},
            content_type="application/json",
        )

    async def _forward_form(self, request: web.Request, fields: dict[str, str]) -> _Upstream:
        return await self._forward(request, urlencode(fields).encode())

    # --- usage headers -------------------------------------------------------------------------
    def _usage_headers(self, up: _Upstream) -> dict[str, str]:
        """Replacement values for the three usage headers (keys: their canonical names)."""
        bucs = _buc_ids(up)
        mode, rng = self.mode, self.rng
        if mode == "huge_usage":
            big = HUGE
            buc = {
                i: [
                    {
                        "type": "ads_management",
                        "call_count": big,
                        "total_cputime": big,
                        "total_time": big,
                        "estimated_time_to_regain_access": big,
                    }
                ]
                for i in bucs
            }
            return {
                "X-Business-Use-Case-Usage": _raw_json(buc),
                "X-App-Usage": f'{{"call_count": {big}, "total_cputime": {big}, "total_time": {big}}}',
                "X-Ad-Account-Usage": f'{{"acc_id_util_pct": {big}, "reset_time_duration": {big}}}',
            }
        if mode == "nan_usage":
            values = ["NaN", "Infinity", "-Infinity"]
            pick = rng.choice
            buc_text = ", ".join(
                f'"{i}": [{{"type": "ads_management", "call_count": {pick(values)}, '
                f'"total_cputime": {pick(values)}, "total_time": {pick(values)}, '
                f'"estimated_time_to_regain_access": {pick(values)}}}]'
                for i in bucs
            )
            return {
                "X-Business-Use-Case-Usage": "{" + buc_text + "}",
                "X-App-Usage": f'{{"call_count": {pick(values)}, "total_cputime": NaN, "total_time": Infinity}}',
                "X-Ad-Account-Usage": f'{{"acc_id_util_pct": {pick(values)}, "reset_time_duration": NaN}}',
            }
        if mode == "malformed_usage":
            first = bucs[0]
            junk_buc = [
                f'{{"{first}": "x"}}',
                "[1, 2]",
                f'{{"{first}": [{{"type": null, "call_count": {{"a": 1}}, "estimated_time_to_regain_access": [5]}}]}}',
                f'{{"{first}": [{{"type": "ads_management", "call_count":',
                "not json at all",
                f'{{"{first}": [null, 7, "s", {{"type": "ads_management", "call_count": "1e999"}}]}}',
                f'{{"{first}": [{{"type": "ads_management", "call_count": -50, "estimated_time_to_regain_access": -1e308}}]}}',
                "null",
                '"just a string"',
                "{" * 2000,
            ]
            junk_app = ['{"call_count": [1]}', "{'call_count': }", "[]", "1e999", "{" * 2000, "true"]
            junk_acc = [
                '{"acc_id_util_pct": "lots", "reset_time_duration": {"x": 1}}',
                '{"acc_id_util_pct": 1e999, "reset_time_duration": -1e999}',
                "{,}",
                "[[[[",
            ]
            return {
                "X-Business-Use-Case-Usage": rng.choice(junk_buc),
                "X-App-Usage": rng.choice(junk_app),
                "X-Ad-Account-Usage": rng.choice(junk_acc),
            }
        # absurd_regain: throttle-looking, regain in 10**9 minutes
        throttled: dict[str, list[dict[str, Any]]] = {
            i: [
                {
                    "type": "ads_management",
                    "call_count": 100,
                    "total_cputime": 100,
                    "total_time": 100,
                    "estimated_time_to_regain_access": REGAIN_MINUTES,
                    "ads_api_access_tier": "standard_access",
                }
            ]
            for i in bucs
        }
        return {
            "X-Business-Use-Case-Usage": json.dumps(throttled),
            "X-App-Usage": json.dumps({"call_count": 100, "total_cputime": 100, "total_time": 100}),
            "X-Ad-Account-Usage": json.dumps(
                {"acc_id_util_pct": 100, "reset_time_duration": REGAIN_MINUTES * 60}
            ),
        }


def _raw_json(buc: dict[str, list[dict[str, str]]]) -> str:
    """JSON where the values are raw number literals (400 digits)."""
    parts = []
    for key, entries in buc.items():
        items = ", ".join(
            "{" + ", ".join(f'"{k}": {_lit(k, v)}' for k, v in e.items()) + "}" for e in entries
        )
        parts.append(f'"{key}": [{items}]')
    return "{" + ", ".join(parts) + "}"


def _lit(key: str, value: str) -> str:
    return json.dumps(value) if key == "type" else value


def _buc_ids(up: _Upstream) -> list[str]:
    """The business-object ids of the real answer's BUC header (else the ad accounts named in it)."""
    for name, value in up.headers.items():
        if name.lower() == "x-business-use-case-usage":
            try:
                parsed = json.loads(value)
            except ValueError:
                break
            if isinstance(parsed, dict) and parsed:
                return [str(k) for k in parsed]
    found = _ACT_RE.findall(up.text)
    return sorted(set(found)) or ["1000000001"]


def _form_of(request: web.Request, body: bytes) -> dict[str, str]:
    if request.content_type != "application/x-www-form-urlencoded":
        return {}
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def _batch_of(body: bytes) -> list[Any]:
    fields = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    try:
        batch = json.loads(fields.get("batch", ""))
    except ValueError:
        return []
    return batch if isinstance(batch, list) else []


def _echo_error(form: dict[str, str]) -> dict[str, Any]:
    token, proof = form.get("access_token", ""), form.get("appsecret_proof", "")
    return {
        "error": {
            "message": f"(#100) Invalid parameter: access_token={token}&appsecret_proof={proof}",
            "type": "OAuthException",
            "code": 100,
            "error_user_title": f"Bad token {token}",
            "error_user_msg": f"The proof {proof} does not match the token {token}",
            "fbtrace_id": f"A{proof[:8]}",
        }
    }


def _answer(up: _Upstream, body: bytes | None = None, headers: dict[str, str] | None = None) -> web.Response:
    out = dict(up.headers)
    if headers:
        lower = {k.lower() for k in headers}
        out = {k: v for k, v in out.items() if k.lower() not in lower}
        out.update(headers)
    return web.Response(status=up.status, body=up.body if body is None else body, headers=out)


async def _reset_mid_body(request: web.Request, up: _Upstream) -> web.StreamResponse:
    """The real status and headers, a Content-Length for the whole body, half of it, then a reset."""
    resp = web.StreamResponse(status=up.status, headers={**up.headers, "Content-Length": str(len(up.body))})
    await resp.prepare(request)
    await resp.write(up.body[: max(1, len(up.body) // 2)])
    transport = request.transport
    if transport is not None:
        transport.abort()
    return resp


# --- the matrix cell -------------------------------------------------------------------------------
SCALE = 1e7
"""Virtual seconds per wall second for the simulator and the engine: a 24 h park costs 8.6 ms."""
RUN_TIMEOUT_S = 3.0
"""Wall seconds a run may take before it counts as hung (a healthy cell's run takes ~0.05 s)."""
TYPES = ("campaign", "adset", "adcreative", "ad")


def job_ops(accounts: list[str], page_id: str, seeded: dict[str, Any]) -> list[Operation]:
    """3 campaign → ad set → creative → ad trees on two accounts + 4 status updates (16 ops)."""
    ops: list[Operation] = []
    for i in range(3):
        ops.extend(tree_ops(f"t{i}", accounts[i % 2], page_id))
    ops.append(status_op("s0", accounts[0], Ref("t0-c")))
    ops.append(status_op("s1", accounts[1], Ref("t1-as")))
    ops.append(status_op("s2", accounts[0], Ref("t2-ad")))
    first_seeded = seeded[accounts[1]][0]
    ops.append(status_op("s3", accounts[1], str(first_seeded)))
    return ops


def engine_config(url: str, **overrides: Any) -> EngineConfig:
    params: dict[str, Any] = {
        "credentials": Credentials(access_token=TOKEN, app_secret=APP_SECRET),
        "graph_url": url,
        "seed": 7,
        "retry": RetryConfig(max_attempts=4, base_delay_s=0.0, max_delay_s=0.0, max_throttle_waits=3),
        "governor": GovernorConfig(default_park_s=1.0),
        "request_timeout_s": 10.0,
        "max_batch_ops": 5,
    }
    params.update(overrides)
    return EngineConfig(**params)


@dataclass
class RunFigures:
    counts: dict[str, int] = field(default_factory=dict)
    http_requests: int = 0
    problems: list[str] = field(default_factory=list)
    not_succeeded: list[str] = field(default_factory=list)
    exception: str | None = None  # "Type: message" of what escaped engine.run
    exception_tb: str | None = None
    wall_s: float = 0.0


@dataclass
class CellResult:
    mode: str
    rate: float
    seed: int
    journal: str  # "sqlite" | "none"
    run1: RunFigures = field(default_factory=RunFigures)
    rerun: RunFigures = field(default_factory=RunFigures)
    dup_run1: int = 0
    dup_rerun: int = 0
    lost: int = 0  # create ops without any object after the re-run
    strays: int = 0  # new objects that belong to no op of the job
    other_origin_hits: int = 0
    other_origin_token_hits: int = 0
    requests: int = 0
    mangled: int = 0
    tracebacks: list[str] = field(default_factory=list)  # WARNING+ log records carrying a traceback
    traceback_types: Counter[str] = field(default_factory=Counter)  # their exception types
    leaks: list[str] = field(default_factory=list)  # where the token / secret / proof showed up
    front_stats: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.mode}@{int(self.rate * 100)}%#{self.seed}/{self.journal}"

    @property
    def exceptions(self) -> list[str]:
        return [
            f"{name}: {fig.exception}"
            for name, fig in (("run1", self.run1), ("rerun", self.rerun))
            if fig.exception
        ]

    def failures(self) -> list[str]:
        """Everything the matrix asserts, as readable lines (empty: the cell passed)."""
        out: list[str] = []
        for name, fig in (("run1", self.run1), ("rerun", self.rerun)):
            if fig.exception:
                out.append(f"{name} raised {fig.exception}\n{fig.exception_tb or ''}")
            out.extend(f"{name}: {p}" for p in fig.problems)
        if self.dup_rerun:
            out.append(f"{self.dup_rerun} duplicate objects after the re-run (run 1 left {self.dup_run1})")
        if self.rerun.not_succeeded:
            out.append(f"not succeeded after the re-run: {self.rerun.not_succeeded}")
        if self.lost:
            out.append(f"{self.lost} create ops have no object in the store after the re-run")
        if self.strays:
            out.append(f"{self.strays} new objects belong to no op of the job")
        if self.other_origin_hits:
            out.append(
                f"{self.other_origin_hits} requests reached the other origin "
                f"({self.other_origin_token_hits} with the access token)"
            )
        out.extend(f"traceback logged: {tb[:2000]}" for tb in self.tracebacks)
        return out


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_FORMATTER = logging.Formatter("%(levelname)s %(name)s: %(message)s")


def logged_tracebacks(records: list[logging.LogRecord]) -> list[str]:
    """WARNING+ records whose formatted text holds a traceback."""
    out = []
    for record in records:
        if record.levelno < logging.WARNING:
            continue
        try:
            text = _FORMATTER.format(record)
        except Exception as err:  # a record that cannot even be formatted is worth reporting
            text = f"unformattable record {record.name}: {err!r}"
        if "Traceback" in text:
            out.append(text)
    return out


def _check_run(ops: list[Operation], result: JobResult | None, fig: RunFigures) -> None:
    if result is None:
        return
    fig.counts = dict(result.counts)
    fig.http_requests = result.http_requests
    seen = Counter(o.op_id for o in result.outcomes)
    expected = {op.op_id for op in ops}
    missing = sorted(expected - set(seen))
    if missing:
        fig.problems.append(f"no terminal outcome for {missing}")
    extra = sorted(set(seen) - expected)
    if extra:
        fig.problems.append(f"outcomes for unknown ops {extra}")
    twice = sorted(op_id for op_id, n in seen.items() if n > 1)
    if twice:
        fig.problems.append(f"more than one outcome for {twice}")
    if result.unfinished:
        fig.problems.append(f"unfinished: {list(result.unfinished)}")
    for o in result.outcomes:
        if o.state in (OutcomeState.FAILED, OutcomeState.SKIPPED) and not (o.reason or "").strip():
            fig.problems.append(f"{o.op_id} {o.state.value} without a reason")
    done = {o.op_id for o in result.outcomes if o.state is OutcomeState.SUCCEEDED}
    fig.not_succeeded = sorted(expected - done)


def count_objects(
    nodes: list[dict[str, Any]], ops: list[Operation], job_id: str, baseline: set[str]
) -> tuple[Counter[str], int]:
    """Objects per create op (by idempotency key, or by name when unkeyed) and objects of no op."""
    keys = KeyScheme(job_id)
    creates = [op for op in ops if op.kind.value.startswith("create_")]
    by_key = {keys.key(op.op_id): op.op_id for op in creates}
    by_name = {str(op.params.get("name")): op.op_id for op in creates}
    per_op: Counter[str] = Counter()
    strays = 0
    for node in nodes:
        if node.get("type") not in TYPES or str(node.get("id")) in baseline:
            continue
        name = str(node.get("name") or "")
        key = key_in_name(name)
        op_id = by_key.get(key) if key else by_name.get(name)
        if op_id is None:
            strays += 1
        else:
            per_op[op_id] += 1
    return per_op, strays


def _duplicates(per_op: Counter[str]) -> int:
    return sum(n - 1 for n in per_op.values() if n > 1)


def _leaks(texts: dict[str, str], secrets: tuple[str, ...]) -> list[str]:
    """Where (log records, results, exceptions) a secret shows up."""
    return [where for where, text in texts.items() if any(s and s in text for s in secrets)]


async def _run(
    config: EngineConfig,
    ops: list[Operation],
    job_id: str,
    journal: SqliteJournal | None,
    fig: RunFigures,
    timeout_s: float,
) -> JobResult | None:
    started = time.perf_counter()
    try:
        with anyio.move_on_after(timeout_s) as scope:
            async with BulkEngine(config, clock=ScaledClock(SCALE), journal=journal) as engine:
                return await engine.run(ops, job_id=job_id)
        if scope.cancelled_caught:
            fig.exception = f"Hung: the run did not finish within {timeout_s:g} s of wall time"
    except Exception as err:
        fig.exception = f"{type(err).__name__}: {err}"[:500]
        fig.exception_tb = traceback.format_exc(limit=-12)
    finally:
        fig.wall_s = time.perf_counter() - started
    return None


async def run_cell(
    mode: str,
    rate: float,
    seed: int,
    journal_kind: str,
    tmp_path: Path,
    *,
    timeout_s: float = RUN_TIMEOUT_S,
) -> CellResult:
    """One matrix cell: the job through the hostile front, then again directly; never raises."""
    cell = CellResult(mode, rate, seed, journal_kind)
    started = time.perf_counter()
    capture = _Capture()
    root = logging.getLogger()
    root.addHandler(capture)
    sim = await SimulatorServer(
        SimulatorConfig(
            access_tokens=(TOKEN,),
            app_secret=APP_SECRET,
            access_tier="standard_access",
            time_scale=SCALE,
            seed_campaigns=1,
            seed=seed,
        )
    ).start()
    other = await OtherOrigin().start()
    front = await HostileFront(sim.url, mode, rate=rate, seed=seed, other_origin=other.url).start()
    journal: SqliteJournal | None = None
    try:
        info = sim.info()
        ops = job_ops(info["ad_account_ids"], info["page_ids"][0], info["seeded_campaigns"])
        job_id = f"hostile-{mode}-{int(rate * 100)}-{seed}-{journal_kind}"
        baseline = {str(n["id"]) for n in sim.core.store.snapshot(TYPES)}
        if journal_kind == "sqlite":
            journal = SqliteJournal(tmp_path / f"{job_id}.db")
        result1 = await _run(engine_config(front.url), ops, job_id, journal, cell.run1, timeout_s)
        _check_run(ops, result1, cell.run1)
        per_op, _ = count_objects(sim.core.store.snapshot(TYPES), ops, job_id, baseline)
        cell.dup_run1 = _duplicates(per_op)
        result2 = await _run(engine_config(sim.url), ops, job_id, journal, cell.rerun, timeout_s)
        _check_run(ops, result2, cell.rerun)
        per_op, cell.strays = count_objects(sim.core.store.snapshot(TYPES), ops, job_id, baseline)
        cell.dup_rerun = _duplicates(per_op)
        creates = [op.op_id for op in ops if op.kind.value.startswith("create_")]
        cell.lost = sum(1 for op_id in creates if per_op[op_id] == 0)
        secrets = (
            TOKEN,
            APP_SECRET,
            Credentials(access_token=TOKEN, app_secret=APP_SECRET).appsecret_proof() or "",
        )
        texts = {f"log:{r.name}": _FORMATTER.format(r) for r in capture.records}
        for name, result, fig in (("run1", result1, cell.run1), ("rerun", result2, cell.rerun)):
            if result is not None:
                texts[f"{name}:result"] = json.dumps(result.to_dict(), default=str)
            texts[f"{name}:exception"] = fig.exception or ""
        cell.leaks = _leaks(texts, secrets)
    except Exception as err:  # the harness itself: report, never break the table
        cell.run1.problems.append(f"harness error {type(err).__name__}: {err}\n{traceback.format_exc()}")
    finally:
        if journal is not None:
            journal.close()
        cell.front_stats = dict(front.stats)
        cell.requests = front.stats["requests"]
        cell.mangled = front.mangled
        cell.other_origin_hits = len(other.hits)
        cell.other_origin_token_hits = sum(1 for h in other.hits if h["token_in_body"])
        await front.stop()
        await other.stop()
        await sim.stop()
        root.removeHandler(capture)
        cell.tracebacks = logged_tracebacks(capture.records)
        cell.traceback_types = Counter(
            r.exc_info[0].__name__
            for r in capture.records
            if r.levelno >= logging.WARNING and r.exc_info and r.exc_info[0] is not None
        )
        cell.wall_s = time.perf_counter() - started
    return cell


def matrix(seeds_30: tuple[int, ...] = (1, 2)) -> list[tuple[str, float, int, str]]:
    """Every (mode, rate, seed, journal) cell: 100 % with seed 0, 30 % with each of ``seeds_30``
    (``faithful`` only once: its rate changes nothing)."""
    cells = []
    for mode in MODES:
        rates = ((1.0, (0,)),) if mode == "faithful" else ((1.0, (0,)), (0.3, seeds_30))
        for rate, seeds in rates:
            for seed in seeds:
                for journal in ("sqlite", "none"):
                    cells.append((mode, rate, seed, journal))
    return cells
