"""A hostile Graph stand-in for the scrubbing tests: every answer echoes the request's secrets.

A uniquely named helper module (the test folders share one import namespace). :class:`EchoGraph` is a real
aiohttp server on ``127.0.0.1:0`` in its own thread (so sync tests, Airflow's ``dag.test``-style runs and
CLI subprocesses can all use it). Each batch entry fails with a Graph error whose ``message``,
``error_user_title``, ``error_user_msg`` and ``error_data`` quote the ``access_token`` and
``appsecret_proof`` form values, raw and percent-encoded; the first batch's entries are transient (code 2,
so the engine retries and its retry reasons carry the echo), later ones permanent (100/33). With
``echo_header`` the usage header is junk starting with the token, which the engine logs as malformed.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

from aiohttp import web

from bulk_engine.scrub import spellings
from bulk_engine.simulator.server import serve_app

# Characters that percent-encode ("/", "+", "=") so the encoded echo differs from the raw one.
TOKEN = "EAAB/echo+Token=" + "Zx9q" * 30
APP_SECRET = "echo-app-secret-5f2c9a7d41e3b8c6"
TOKEN_CHUNK = "Zx9qZx9qZx9q"  # any spelling of the token that is not scrubbed still shows this


def leak_needles(*secrets: str) -> list[str]:
    """What must appear nowhere: every spelling of each secret, plus a chunk of the token."""
    found = {TOKEN_CHUNK}
    for secret in secrets:
        found |= spellings(secret)
    return sorted(found)


def assert_no_leak(where: str, text: str, *secrets: str) -> None:
    for needle in leak_needles(*secrets):
        assert needle not in text, f"{where} leaks {needle[:12]}…"


class EchoGraph:
    """``with EchoGraph() as graph:`` → ``graph.url``; ``graph.seen`` holds the (token, proof) pairs received."""

    def __init__(self, *, echo_header: bool = True) -> None:
        self.echo_header = echo_header
        self.seen: list[tuple[str, str]] = []
        self.batches = 0
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._serve, name="echo-graph", daemon=True)

    def __enter__(self) -> EchoGraph:
        self._thread.start()
        assert self._ready.wait(10), "the echo server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _serve(self) -> None:
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner, port = await serve_app(app)
        self.url = f"http://127.0.0.1:{port}"
        self._stop = asyncio.Event()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    @staticmethod
    def _error(token: str, proof: str, *, transient: bool) -> dict[str, Any]:
        form = urlencode({"access_token": token, "appsecret_proof": proof})
        echo = (
            f"access_token={token} appsecret_proof={proof} "
            f"encoded={quote(token, safe='')} plus={quote_plus(token)} form={form}"
        )
        error: dict[str, Any] = {
            "message": f"(#{2 if transient else 100}) Cannot process the request: {echo}",
            "type": "OAuthException",
            "code": 2 if transient else 100,
            "error_user_title": f"Echo {quote(token, safe='')}",
            "error_user_msg": f"We received {echo}",
            "error_data": {"access_token": token, "appsecret_proof": proof, token: "as a key"},
            "fbtrace_id": "AEchoTraceId",
        }
        if transient:
            error["is_transient"] = True
        else:
            error["error_subcode"] = 33
        return error

    async def _handle(self, request: web.Request) -> web.Response:
        form = await request.post() if request.method == "POST" else {}
        token = str(form.get("access_token") or request.query.get("access_token") or "")
        proof = str(form.get("appsecret_proof") or request.query.get("appsecret_proof") or "")
        self.seen.append((token, proof))
        headers = {"X-Business-Use-Case-Usage": f"{token} is not JSON"} if self.echo_header else {}
        batch = form.get("batch")
        if batch is None:
            body = {"error": self._error(token, proof, transient=False)}
            return web.json_response(body, status=400, headers=headers)
        self.batches += 1
        transient = self.batches == 1
        entry = {
            "code": 500 if transient else 400,
            "headers": [{"name": "Content-Type", "value": "text/javascript; charset=UTF-8"}],
            "body": json.dumps({"error": self._error(token, proof, transient=transient)}),
        }
        return web.json_response([entry for _ in json.loads(str(batch))], headers=headers)
