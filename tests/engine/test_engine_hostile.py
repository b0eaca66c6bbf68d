"""Hostile answers never crash the engine and never strand an operation (issue: every op ends terminal).

A real aiohttp server on 127.0.0.1 answers the engine's batches with hypothesis-drawn garbage: wrong
array lengths, ``null`` entries, missing fields, non-JSON bodies, random error codes, malformed usage
headers, HTML 5xx pages. The engine must finish with one terminal outcome per operation.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulk_engine import BulkEngine, Credentials, EngineConfig, GovernorConfig, RetryConfig, ScaledClock
from bulk_engine.planning.graph import Operation, OpKind
from bulk_engine.protocol.refs import Ref

ACT = "act_1"
CODES = st.sampled_from([1, 2, 4, 17, 100, 190, 200, 368, 613, 80004, 1885621, -1, 0, 99999])
HEADER_VALUES = st.one_of(
    st.text(max_size=30),
    st.just(
        '{"1": [{"type": "ads_management", "call_count": "lots", "estimated_time_to_regain_access": 1}]}'
    ),
    st.just("{'acc_id_util_pct': 9.67, 'reset_time_duration': 'x'}"),
    st.just('{"call_count": 101.5}'),
)
ERROR_BODY = st.builds(
    lambda code, sub, transient: json.dumps(
        {"error": {"code": code, "error_subcode": sub, "message": "x", "is_transient": transient}}
    ),
    CODES,
    st.one_of(st.none(), st.integers(-5, 3_000_000)),
    st.one_of(st.none(), st.booleans()),
)
ENTRY = st.one_of(
    st.none(),
    st.just({"code": 200, "body": '{"id": "123"}'}),
    st.builds(lambda b: {"code": 400, "body": b}, ERROR_BODY),
    st.builds(lambda b: {"code": 200, "body": b}, st.text(max_size=20)),  # non-JSON body
    st.just({"body": '{"id": "1"}'}),  # missing code
    st.just({"code": 200}),  # missing body
    st.just("not an object"),
    st.builds(
        lambda v: {
            "code": 200,
            "headers": [{"name": "X-Business-Use-Case-Usage", "value": v}],
            "body": '{"id": "9"}',
        },
        HEADER_VALUES,
    ),
)
ANSWER = st.one_of(
    st.builds(lambda entries: (200, json.dumps(entries)), st.lists(ENTRY, max_size=8)),
    st.builds(lambda b: (400, b), ERROR_BODY),
    st.just((500, "<html>oops</html>")),
    st.just((200, "")),
    st.just((200, "{}")),
)


async def _run_against(answers: list[tuple[int, str]]) -> Any:
    queue = list(answers)

    async def handler(request: web.Request) -> web.Response:
        await request.post()
        status, text = queue.pop(0) if queue else (500, "gone")
        return web.Response(status=status, text=text, headers={"X-App-Usage": "{bad json"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    ops = [
        Operation(
            op_id="c",
            method="POST",
            path=f"{ACT}/campaigns",
            account_id=ACT,
            kind=OpKind.CREATE_CAMPAIGN,
            params={"name": "c"},
        ),
        Operation(
            op_id="a",
            method="POST",
            path=f"{ACT}/adsets",
            account_id=ACT,
            kind=OpKind.CREATE_ADSET,
            params={"campaign_id": Ref("c")},
        ),
        *[
            Operation(
                op_id=f"u{i}",
                method="POST",
                path=f"{i + 100}",
                account_id=ACT,
                kind=OpKind.UPDATE,
                params={"status": "PAUSED"},
            )
            for i in range(4)
        ],
    ]
    config = EngineConfig(
        credentials=Credentials(access_token="t"),
        graph_url=f"http://127.0.0.1:{port}",
        seed=1,
        retry=RetryConfig(max_attempts=3, base_delay_s=0.0, max_delay_s=0.0, max_throttle_waits=3),
        governor=GovernorConfig(default_park_s=1.0),
    )
    try:
        async with BulkEngine(config, clock=ScaledClock(1e7)) as engine:
            result = await engine.run(ops)
    finally:
        await runner.cleanup()
    return ops, result


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ANSWER, max_size=12))
def test_every_operation_ends_terminal_whatever_the_server_says(answers: list[tuple[int, str]]) -> None:
    ops, result = anyio.run(_run_against, answers)
    assert sorted(o.op_id for o in result.outcomes) == sorted(op.op_id for op in ops)
    assert sum(result.counts.values()) == len(ops)
    for outcome in result.outcomes:
        if outcome.state == "failed":
            assert outcome.reason or outcome.error
        if outcome.state == "skipped":
            assert outcome.reason
