"""``ThrottleCooldownTrigger``: wait until a throttled ad account may be called again. Never writes.

The operator defers with it when the governor (or its own pre-flight read) finds every account with work
left blocked for longer than ``defer_after_s``; the worker slot is free while the triggerer waits.

It fires at ``resume_at_epoch`` (UNIX seconds, wall clock). With ``conn_id`` and ``poll_s`` it also reads
``GET /<account_id>?fields=id`` every ``poll_s`` seconds and fires early once the usage headers no longer
report a block (``estimated_time_to_regain_access`` = 0 and no throttling error). Meta counts refused
calls too ("continuing to make calls … will increase the time before calls will be successful"), so keep
polling sparse (minutes) against the real API; the default is no polling at all.

A trigger may run more than once (triggerer restarts, HA triggerers): it keeps no state but its kwargs.
``task_state`` is handed back untouched in the event: what the task counts across its deferrals (the event is
the one channel every runner keeps — ``dag.test()`` drops ``defer(kwargs=…)``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from bulk_engine import ErrorClass

from .._graph import BUC_ADS_MANAGEMENT, GraphReadError, graph_get

CLASSPATH = "airflow_provider.triggers.throttle.ThrottleCooldownTrigger"


class ThrottleCooldownTrigger(BaseTrigger):
    """Fires ``{"status": "cooled_down" | "regained", "account_id", "resume_at_epoch", "polls", "task_state"}``.

    :param account_id: the blocked ad account, ``act_<id>``.
    :param resume_at_epoch: UNIX time at which the block is expected to be over.
    :param conn_id: ``meta_graph`` connection used for the optional usage reads.
    :param poll_s: seconds between usage reads; ``None`` (default) = wait for ``resume_at_epoch`` only.
    :param buc_type: business use case whose block is awaited (default ``ads_management``).
    :param task_state: JSON-able state returned as is in the event (the operator's deferral counters).
    """

    def __init__(
        self,
        account_id: str,
        resume_at_epoch: float,
        conn_id: str | None = None,
        poll_s: float | None = None,
        buc_type: str = BUC_ADS_MANAGEMENT,
        task_state: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if poll_s is not None and poll_s <= 0:
            raise ValueError("poll_s must be > 0 (or None for no polling)")
        self.account_id = account_id
        self.resume_at_epoch = float(resume_at_epoch)
        self.conn_id = conn_id
        self.poll_s = poll_s
        self.buc_type = buc_type
        self.task_state = dict(task_state or {})

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            CLASSPATH,
            {
                "account_id": self.account_id,
                "resume_at_epoch": self.resume_at_epoch,
                "conn_id": self.conn_id,
                "poll_s": self.poll_s,
                "buc_type": self.buc_type,
                "task_state": self.task_state,
            },
        )

    def _event(self, status: str, polls: int) -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "account_id": self.account_id,
                "resume_at_epoch": self.resume_at_epoch,
                "polls": polls,
                "task_state": self.task_state,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        polls = 0
        polling = self.conn_id is not None and self.poll_s is not None
        while True:
            remaining = self.resume_at_epoch - time.time()
            if remaining <= 0:
                yield self._event("cooled_down", polls)
                return
            if not polling:
                await asyncio.sleep(remaining)
                continue
            assert self.poll_s is not None
            await asyncio.sleep(min(self.poll_s, remaining))
            if self.resume_at_epoch - time.time() <= 0:
                continue
            polls += 1
            if await self._regained():
                yield self._event("regained", polls)
                return

    async def _regained(self) -> bool:
        """One read of the account: ``True`` when it answered without a throttle and reports no block."""
        from ..hooks.meta_graph import MetaGraphHook

        assert self.conn_id is not None
        try:
            config = await MetaGraphHook(self.conn_id).aget_engine_config()
            read = await graph_get(config, self.account_id, {"fields": "id"}, account_id=self.account_id)
        except GraphReadError as err:
            self.log.info("usage read of %s failed (%s); waiting on", self.account_id, err)
            return False
        throttled = read.error is not None and read.error.error_class is ErrorClass.THROTTLED
        regain = read.regain_after_s(self.account_id, self.buc_type)
        if throttled or regain > 0:
            self.log.info("%s still blocked (regain in %.0f s)", self.account_id, regain)
            return False
        return True
