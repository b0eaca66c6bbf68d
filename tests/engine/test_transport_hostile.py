"""GraphTransport against hostile servers: redirects, absurd usage headers, huge or undecodable bodies,
timeouts — and the governor's park cap for an absurd regain time.

Issue "Exactly-once under any answer": Graph never redirects API calls, so a 3xx is not followed (that
would re-send the token and the batch to another origin) and becomes an outcome-unknown
``TransportError``; no header value may crash a batch; a connect that timed out sent nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohappyeyeballs
import pytest
from aiohttp import web

from bulk_engine import Credentials, EngineConfig, GovernorConfig
from bulk_engine.errors import TransportError
from bulk_engine.execution import transport as transport_module
from bulk_engine.execution.governor import Governor
from bulk_engine.execution.transport import GraphTransport, HttpAnswer, redirect_target
from bulk_engine.protocol.usage import BucType, parse_usage_headers
from bulk_engine.simulator.server import serve_app

TOKEN = "secret-token"
ACT = "act_1"
HUGE = "1" + "0" * 400  # a 400-digit JSON integer: float() of it raises OverflowError
BATCH = '[{"method":"GET","relative_url":"me"}]'
ANSWER = json.dumps([{"code": 200, "headers": [], "body": '{"id": "1"}'}])

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Server:
    url: str
    requests: list[str] = field(default_factory=list)  # "METHOD path" of every request received


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[Server]]]:
    """``server = await serve(handler)``: a real aiohttp server on 127.0.0.1:0 counting its requests."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> Server:
        server = Server(url="")

        async def counted(request: web.Request) -> web.StreamResponse:
            server.requests.append(f"{request.method} {request.path_qs}")
            return await handler(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", counted)
        runner, port = await serve_app(app)
        runners.append(runner)
        server.url = f"http://127.0.0.1:{port}"
        return server

    yield start
    for runner in runners:
        await runner.cleanup()


def config_for(url: str, **overrides: Any) -> EngineConfig:
    params: dict[str, Any] = {"credentials": Credentials(access_token=TOKEN), "graph_url": url, "seed": 7}
    params.update(overrides)
    return EngineConfig(**params)


async def ok(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text=ANSWER, content_type="application/json")


# --------------------------------------------------------------------------- redirects


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_redirect_is_never_followed(
    status: int, serve: Callable[[Handler], Awaitable[Server]]
) -> None:
    other = await serve(ok)
    location = f"{other.url}/v24.0/?access_token={TOKEN}&appsecret_proof=abcdef0123456789&keep=1"

    async def redirect(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=status, headers={"Location": location})

    front = await serve(redirect)
    async with GraphTransport(config_for(front.url)) as transport:
        with pytest.raises(TransportError) as caught:
            await transport.post_batch(BATCH)

    message = str(caught.value)
    assert caught.value.sent is True  # the server may have acted before answering: reconcile
    assert message.startswith(f"HTTP {status} redirect to {other.url}/v24.0/?access_token=***")
    assert "appsecret_proof=***" in message and "keep=1" in message
    assert "not followed (Graph API calls are never redirected)" in message
    assert TOKEN not in message and "abcdef0123456789" not in message
    assert len(front.requests) == 1
    assert other.requests == []  # the token and the batch never reached the other origin


async def test_a_redirect_without_location_and_a_secret_in_the_path(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    async def redirect(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=303)

    front = await serve(redirect)
    async with GraphTransport(config_for(front.url)) as transport:
        with pytest.raises(TransportError) as caught:
            await transport.post_batch(BATCH)
    assert caught.value.sent is True and str(caught.value).startswith("HTTP 303 redirect to (no Location)")

    scrubbed = redirect_target(f"http://x/{TOKEN}/a%20b\x07?Access_Token={TOKEN}#f", (TOKEN,))
    assert scrubbed == r"http://x/***/a%20b\x07?Access_Token=***#f"
    assert redirect_target("http://x/t/?q=1", ("t",)) == "http://x/t/?q=1"  # too short to be a credential
    assert len(redirect_target("http://x/" + "a" * 5000)) <= 201


# --------------------------------------------------------------------------- absurd usage headers


async def test_400_digit_usage_headers_do_not_crash_a_batch(
    serve: Callable[[Handler], Awaitable[Server]], caplog: pytest.LogCaptureFixture
) -> None:
    headers = {
        "X-Business-Use-Case-Usage": json.dumps({"1": [{"type": "ads_management"}]}).replace(
            '"ads_management"',
            f'"ads_management", "call_count": {HUGE}, "total_time": -{HUGE}, '
            f'"estimated_time_to_regain_access": {HUGE}',
        ),
        "X-App-Usage": f'{{"call_count": {HUGE}, "total_time": NaN, "total_cputime": [{HUGE}]}}',
        "X-Ad-Account-Usage": f'{{"acc_id_util_pct": {HUGE}, "reset_time_duration": {HUGE}}}',
    }

    async def absurd(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text=ANSWER, content_type="application/json", headers=headers)

    server = await serve(absurd)
    with caplog.at_level(logging.WARNING, logger="bulk_engine.protocol.usage"):
        async with GraphTransport(config_for(server.url)) as transport:
            answer = await transport.post_batch(BATCH)
            assert isinstance(answer, HttpAnswer) and answer.status == 200
            snap = parse_usage_headers(answer.headers, account_id=ACT)

    assert snap.max_pct_for(ACT, BucType.ADS_MANAGEMENT) == 1000.0  # clamped, finite
    assert snap.max_pct_for(ACT, BucType.PLATFORM) == 1000.0
    (entry,) = snap.buc
    assert entry.total_time == 0.0
    assert snap.regain_after_s(ACT, BucType.ADS_MANAGEMENT) == 10 * 365 * 86400.0  # bounded; governor caps
    assert snap.app is not None and snap.app.total_time == 0.0 and snap.app.total_cputime == 0.0
    assert all(HUGE not in record.getMessage() for record in caplog.records)


class FakeClock:
    """Time that only moves when told (or slept through)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now

    scale = 1.0

    def wall(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


def test_a_10_to_the_400_minute_regain_parks_for_exactly_the_cap(caplog: pytest.LogCaptureFixture) -> None:
    header = {
        "X-Business-Use-Case-Usage": (
            f'{{"1": [{{"type": "ads_management", "call_count": 100, "estimated_time_to_regain_access": {HUGE}}}]}}'
        )
    }
    usage = parse_usage_headers(header, account_id=ACT)
    clock = FakeClock()
    governor = Governor(GovernorConfig(), clock)
    with caplog.at_level(logging.WARNING, logger="bulk_engine.execution.governor"):
        governor.observe(ACT, usage)
        assert governor.parked_for(ACT) == 86400.0  # the default max_park_s
        assert governor.throttled(ACT, "ads_management", usage) == 86400.0  # the sleep the runner takes
        assert governor.parked_for(ACT) == 86400.0
        clock.now += 100.0
        governor.observe(ACT, usage)  # a second reading: parked anew, still for the cap
        assert governor.parked_for(ACT) == 86400.0

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per pair
    assert "ad account act_1 (ads_management)" in warnings[0] and "315360000 s" in warnings[0]
    assert "parking for the cap, max_park_s=86400 s" in warnings[0]

    custom = Governor(GovernorConfig(max_park_s=90.0), FakeClock())
    assert custom.throttled(ACT, "ads_management", usage) == 90.0 and custom.parked_for(ACT) == 90.0
    # Without an estimate the backoff stays below the cap too.
    assert Governor(GovernorConfig(max_park_s=5.0), FakeClock()).throttled(ACT, "ads_management", None) == 5.0


def test_a_regain_below_the_cap_is_not_changed(caplog: pytest.LogCaptureFixture) -> None:
    header = {
        "X-Business-Use-Case-Usage": '{"1": [{"type": "ads_management", "estimated_time_to_regain_access": 19}]}'
    }
    governor = Governor(GovernorConfig(), FakeClock())
    with caplog.at_level(logging.WARNING, logger="bulk_engine.execution.governor"):
        governor.observe(ACT, parse_usage_headers(header, account_id=ACT))
    assert governor.parked_for(ACT) == 19 * 60.0 and not caplog.records


# --------------------------------------------------------------------------- bodies and timeouts


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_body_above_the_limit_is_refused(
    chunked: bool, serve: Callable[[Handler], Awaitable[Server]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport_module, "MAX_BODY_BYTES", 4096)

    async def huge(request: web.Request) -> web.StreamResponse:
        await request.read()
        if not chunked:  # Content-Length says it up front
            return web.Response(body=b"[" + b" " * 10_000 + b"]", content_type="application/json")
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for _ in range(10):
            await resp.write(b" " * 1000)
        await resp.write_eof()
        return resp

    server = await serve(huge)
    async with GraphTransport(config_for(server.url)) as transport:
        with pytest.raises(TransportError) as caught:
            await transport.post_batch(BATCH)
        assert caught.value.sent is True and "exceeds 4096 bytes" in str(caught.value)
        monkeypatch.setattr(transport_module, "MAX_BODY_BYTES", 64 * 1024)
        answer = await transport.post_batch(BATCH)  # the session still works
        assert answer.status == 200


async def test_an_undecodable_or_deep_body_is_an_answer_not_a_crash(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    bodies = [b'\xff\xfe{"id": "1"}', b"[" * 100_000, b"\x00" * 10]

    async def junk(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=bodies.pop(0), content_type="application/json", charset="utf-8")

    server = await serve(junk)
    async with GraphTransport(config_for(server.url)) as transport:
        first = await transport.post_batch(BATCH)
        assert first.body is None and first.text.startswith("\ufffd\ufffd")
        deep = await transport.post_batch(BATCH)
        assert deep.body is None and len(deep.text) == 100_000
        nul = await transport.post_batch(BATCH)
        assert nul.body is None and nul.text == "\x00" * 10


async def test_a_connect_timeout_sent_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The connect phase (TCP, TLS) is bounded by sock_connect; timing out there sent nothing."""

    async def hang(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(30)

    monkeypatch.setattr(transport_module, "CONNECT_TIMEOUT_S", 0.2)
    monkeypatch.setattr(aiohappyeyeballs, "start_connection", hang)
    async with GraphTransport(config_for("http://127.0.0.1:9", request_timeout_s=10.0)) as transport:
        with pytest.raises(TransportError) as caught:
            await asyncio.wait_for(transport.post_batch(BATCH), 5)
    assert caught.value.sent is False
    assert str(caught.value) == "connecting to http://127.0.0.1:9 timed out: nothing was sent"


async def test_a_read_timeout_after_sending_is_an_unknown_outcome(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await request.read()
        await release.wait()  # answers only after the client gave up
        return web.Response(text=ANSWER)

    server = await serve(slow)
    async with GraphTransport(config_for(server.url, request_timeout_s=0.3)) as transport:
        with pytest.raises(TransportError) as caught:
            await transport.post_batch(BATCH)
    release.set()
    assert caught.value.sent is True and "timed out after sending" in str(caught.value)
    assert len(server.requests) == 1  # it was sent: the server had it
