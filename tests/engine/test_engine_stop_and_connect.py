"""Graceful stop (``BulkEngine.request_stop``) and connect errors told apart from errors after sending."""

from __future__ import annotations

import socket
from typing import Any

import anyio
import pytest
from engine_support import campaign_op

from bulk_engine import BulkEngine, OutcomeState
from bulk_engine.config import RetryConfig
from bulk_engine.errors import TransportError
from bulk_engine.execution.events import BatchSent
from bulk_engine.execution.transport import GraphTransport
from bulk_engine.simulator import FaultConfig


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_request_stop_lets_batches_in_flight_finish_and_sends_nothing_new(start_sim: Any) -> None:
    sim = await start_sim(access_tier="standard_access", faults=FaultConfig(latency_ms=150))
    act = sim.accounts[0]
    ops = [campaign_op(f"c{i}", act) for i in range(400)]
    sent: list[tuple[str, ...]] = []
    engines: list[BulkEngine] = []

    def observe(event: Any) -> None:
        if isinstance(event, BatchSent):
            sent.append(event.op_ids)
            if len(sent) == 1:
                engines[0].request_stop()  # while the first batches are on the wire

    async with BulkEngine(sim.engine_config(max_batch_ops=10), observer=observe) as engine:
        engines.append(engine)
        result = await engine.run(ops)
        await engine.wait_drained()
        later = await engine.run([campaign_op("after-stop", act)])

    sent_ids = {op_id for batch in sent for op_id in batch}
    succeeded = {o.op_id for o in result.outcomes if o.state is OutcomeState.SUCCEEDED}
    assert succeeded == sent_ids and 0 < len(sent_ids) < 400  # every batch in flight answered and recorded
    assert result.counts["failed"] == result.counts["skipped"] == 0
    assert set(result.unfinished) == {op.op_id for op in ops} - sent_ids  # the rest: unfinished, not skipped
    assert len(list(sim.server.core.store.nodes("campaign"))) == len(sent_ids)  # nothing lost, nothing extra
    assert later.outcomes == () and later.unfinished == ("after-stop",) and later.http_requests == 0
    assert engine.stop_requested


async def test_a_refused_connection_is_a_connect_error_nothing_was_sent(start_sim: Any) -> None:
    sim = await start_sim()
    url = f"http://127.0.0.1:{_closed_port()}"
    config = sim.engine_config(graph_url=url, retry=RetryConfig(max_attempts=2, base_delay_s=0.0))
    async with GraphTransport(config) as transport:
        with pytest.raises(TransportError) as caught:
            await transport.post_batch("[]")
    assert caught.value.sent is False
    assert str(caught.value) == f"cannot connect to {url} (connection refused): nothing was sent"

    async with BulkEngine(config) as engine:
        with anyio.fail_after(10):
            result = await engine.run([campaign_op("c0", sim.accounts[0])])
    (outcome,) = result.outcomes
    assert outcome.state is OutcomeState.FAILED and "cannot connect to" in (outcome.reason or "")
    assert result.unknown_outcomes == 0  # safe to retry: not an outcome-unknown send


async def test_a_connection_lost_after_sending_is_still_an_unknown_outcome(start_sim: Any) -> None:
    sim = await start_sim(faults=FaultConfig(drop_after_commit_rate=1.0))
    config = sim.engine_config(retry=RetryConfig(max_attempts=1))
    async with GraphTransport(config) as transport:
        with pytest.raises(TransportError) as caught:
            await transport.post_batch('[{"method":"GET","relative_url":"me"}]')
    assert caught.value.sent is True and "after sending" in str(caught.value)
