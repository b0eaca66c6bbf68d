"""Waits a task's own flow makes between engine jobs, offered to the operator so the task defers.

A create task waits for Graph to process its videos (``status.video_status``) before it creates the creatives
that use them (bulk_engine/operations/video_flow.py). In a deferrable task such a wait, of ``defer_after_s`` or
more, breaks the job off with :class:`~airflow_provider.running.LongHold` — nothing is in flight then — and the
operator defers on the wait-only cool-down trigger until the flow's next status check; the resumed run replays
the uploads from the journal and looks again. The engine never imports Airflow: the flow only calls
``offer_wait`` when the engine it was given has one (``video_flow.WaitHost``).
"""

from __future__ import annotations

import time
from typing import Any

from ..running import LongHold

__all__ = ["DeferringWaits"]


class DeferringWaits:
    """The engine as ``run_job`` sees it in a task: the guard, plus ``offer_wait`` for the waits a task's own
    flow makes between engine jobs (a video processing on Graph: video_flow.WaitHost).

    A wait of the task run's ``threshold_s`` or more (``None``: never, the task is not deferrable) raises :class:`LongHold`
    for its account, so the task defers until the flow's next check instead of holding its worker; nothing
    is in flight then (the flow waits between engine jobs)."""

    def __init__(self, guard: Any, task_run: Any) -> None:
        self._guard = guard
        self._threshold_s: float | None = task_run.threshold_s  # TaskRun's: None when not deferrable

    def __getattr__(self, name: str) -> Any:
        return getattr(self._guard, name)

    async def offer_wait(self, account_id: str, seconds: float, reason: str) -> None:
        if self._threshold_s is None or seconds < self._threshold_s:
            return
        scale = float(getattr(getattr(self._guard.engine, "clock", None), "scale", 1.0) or 1.0)
        raise LongHold({account_id: time.time() + seconds / scale}, {account_id: reason})
