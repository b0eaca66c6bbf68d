"""Helpers of the Airflow tests (plain functions; the fixtures live in ``conftest.py``)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

CONN_ID = "meta_default"
CONN_ENV = "AIRFLOW_CONN_META_DEFAULT"
RunDag = Callable[..., Any]


def conn_json(url: str, token: str, account: str | None, **extra: Any) -> str:
    """An ``AIRFLOW_CONN_…`` value for a ``meta_graph`` connection."""
    fields: dict[str, Any] = {"base_url": url, "api_version": "v24.0", **extra}
    if account is not None:
        fields["ad_account_id"] = account
    return json.dumps({"conn_type": "meta_graph", "password": token, "extra": fields})


def xcom(dag_run: Any, task_id: str, key: str = "return_value", map_index: int | None = None) -> Any:
    """An XCom value of a finished run, read from the metadata database."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = XComModel.get_many(
            key=key, run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id, map_indexes=map_index
        )
        rows = session.scalars(query).all()
        values = [XComModel.deserialize_value(row) for row in rows]
    if map_index is None and len(values) == 1:
        return values[0]
    return values


def ti_states(dag_run: Any) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {
            (ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"): str(ti.state)
            for ti in dag_run.get_task_instances(session=session)
        }


def store(sim: Any, *types: str) -> list[dict[str, Any]]:
    """What the simulator holds, by node type (thread-safe read)."""
    return list(sim.run(lambda core: core.store.snapshot(list(types))))


@contextlib.contextmanager
def lift_block_when_polled(
    sim: Any, account_id: str, *, refused_reads: int, advance_s: float
) -> Iterator[None]:
    """Advance the simulator's clock by ``advance_s`` each time ``refused_reads`` more throttled reads of
    ``account_id`` arrived (e.g. the operator's pre-flight read and the cool-down trigger's first poll).

    Event-driven: a watcher thread checks the simulator's call log, so the block lasts exactly until the
    code under test has shown that it waits, whatever the machine's speed.
    """
    stop = threading.Event()

    def refused() -> int:
        return int(
            sim.run(
                lambda core: sum(
                    1
                    for c in core.calls
                    if c.method == "GET" and c.error_code == 80004 and account_id in c.path
                )
            )
        )

    def watch() -> None:
        lifted_at = 0
        while not stop.wait(0.01):
            seen = refused()
            if seen - lifted_at >= refused_reads:
                sim.run(lambda core: core.clock.advance(advance_s))
                lifted_at = seen

    watcher = threading.Thread(target=watch, name="lift-block", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join(timeout=10)


def graph_post(sim: Any, path: str, **params: Any) -> dict[str, Any]:
    """One Graph API POST to the simulator over HTTP (e.g. to set up objects a test DAG works on)."""
    import urllib.parse
    import urllib.request

    info = sim.info()
    fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    fields["access_token"] = info["access_token"]
    url = f"{info['url']}/{info['api_version']}/{path}"
    request = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return dict(json.load(answer))
