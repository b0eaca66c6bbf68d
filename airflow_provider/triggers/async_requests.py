"""``AsyncRequestSetTrigger``: poll an async request set (``/<set_id>``) until it is completed. Read-only.

Async batch request sets (``POST act_<id>/async_batch_requests``, ``asyncadrequestsets``) are processed by
Meta in the background; an operator that submitted one defers with this trigger instead of holding a
worker. Each poll is ``GET /<set_id>?fields=id,name,is_completed,<counts>``; the trigger fires
``{"status": "completed", "set_id", "set": {...counts...}, "polls"}`` once ``is_completed`` is true, or
``{"status": "error", "set_id", "error": {...}, "polls"}`` when Graph answers a permanent error (unknown
set, token rejected). Transient errors and throttling only delay the next poll (to the regain time).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from bulk_engine import ErrorClass

from .._graph import BUC_ADS_MANAGEMENT, GraphReadError, graph_get

CLASSPATH = "airflow_provider.triggers.async_requests.AsyncRequestSetTrigger"
SET_FIELDS = "id,name,is_completed,total_count,initial_count,in_progress_count,success_count,error_count,canceled_count"


class AsyncRequestSetTrigger(BaseTrigger):
    """Waits for an async request set to complete.

    :param conn_id: ``meta_graph`` connection.
    :param set_id: the async request set id returned by the POST that created it.
    :param poll_s: seconds between reads (default 30).
    :param account_id: the set's ad account (``act_<id>``), used to read its throttle headers.
    :param task_state: returned unchanged in the event (a deferred operator's counters across deferrals).
    """

    def __init__(
        self,
        conn_id: str,
        set_id: str,
        poll_s: float = 30.0,
        account_id: str | None = None,
        task_state: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if poll_s <= 0:
            raise ValueError("poll_s must be > 0")
        self.conn_id = conn_id
        self.set_id = str(set_id)
        self.poll_s = float(poll_s)
        self.account_id = account_id
        self.task_state = task_state

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            CLASSPATH,
            {
                "conn_id": self.conn_id,
                "set_id": self.set_id,
                "poll_s": self.poll_s,
                "account_id": self.account_id,
                "task_state": self.task_state,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from ..hooks.meta_graph import MetaGraphHook

        config = await MetaGraphHook(self.conn_id).aget_engine_config()
        polls = 0
        while True:
            polls += 1
            delay = self.poll_s
            try:
                read = await graph_get(
                    config, self.set_id, {"fields": SET_FIELDS}, account_id=self.account_id
                )
            except GraphReadError as err:
                self.log.info("reading async request set %s failed (%s); retrying", self.set_id, err)
                await asyncio.sleep(delay)
                continue
            if read.ok and isinstance(read.body, dict):
                if read.body.get("is_completed") is True:
                    yield TriggerEvent(
                        {
                            "status": "completed",
                            "set_id": self.set_id,
                            "set": read.body,
                            "polls": polls,
                            "task_state": self.task_state,
                        }
                    )
                    return
            elif read.error is not None:
                verdict = read.error.error_class
                if verdict is ErrorClass.THROTTLED and self.account_id is not None:
                    delay = max(delay, read.regain_after_s(self.account_id, BUC_ADS_MANAGEMENT))
                elif verdict not in (ErrorClass.TRANSIENT, ErrorClass.THROTTLED):
                    yield TriggerEvent(
                        {
                            "status": "error",
                            "set_id": self.set_id,
                            "error": read.error.to_dict(),
                            "polls": polls,
                            "task_state": self.task_state,
                        }
                    )
                    return
            await asyncio.sleep(delay)
