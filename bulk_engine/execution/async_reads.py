"""The async backend's reads of Meta's request sets (``execution/async_backend.py``): find a set by its
name, poll its status until it completes or is given up, cancel it, read its results.

S003 §Asynchronous and Batch Requests → Batch API: ``GET act_<id>/async_requests`` lists an account's sets
(cursor-paged, parsed by :func:`~bulk_engine.protocol.pages.parse_page`: an odd page is unreadable, never a
crash), ``GET /<set id>`` its status, ``DELETE /<set id>`` cancels its requests "not processed yet",
``GET /<set id>/requests`` each request's result. Every read is one call the governor paces (``_read``).
:class:`SetReads` is a mixin of :class:`~.async_backend.AsyncRunner` (it reads the runner's governor, clock,
config and stop flag).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import anyio

from bulk_engine.config import EngineConfig
from bulk_engine.persistence.journal import AsyncSetRecord
from bulk_engine.protocol.async_batch import (
    REQUEST_FIELDS,
    SET_STATUS_FIELDS,
    SetProgress,
    request_name,
    set_progress,
)
from bulk_engine.protocol.batch import BatchOp
from bulk_engine.protocol.pages import BadPage, CursorTrail, parse_page

from .charging import READS_OF_AD_OBJECTS
from .clock import Clock
from .events import AsyncSetProgress, EngineEvent
from .governor import Governor

__all__ = ["SetReads", "SetTally"]

logger = logging.getLogger("bulk_engine.async_backend")

_GRACE_POLLS = 5  # reads after the first cancel attempt (whatever it answered), then the set is given up
_LIST_READS = 5  # reads of the account's set list to find a set by its name, before giving up for this run
_LIST_BACKOFF_S = 2.0  # the first wait between two unreadable lists (doubling)
_ABSENT_RECHECK_S = 5.0  # "not in the list" proves a set absent only when a read this much later agrees
_LIST_PAGES = 10  # pages of 100 sets read to find one (the newest first)


@dataclass
class SetTally:
    """Request sets of this run: ``submitted`` by it; ``in_progress``: followed right now (submitted or
    adopted from the journal, not yet collected, given up or detached); ``done``: collected."""

    submitted: int = 0
    in_progress: int = 0
    done: int = 0
    polls: int = 0
    canceled: int = 0
    set_ids: list[str] = field(default_factory=list)


class SetReads:
    """Reads of request sets, mixed into the async runner (which provides these attributes)."""

    config: EngineConfig
    clock: Clock
    governor: Governor
    sets: SetTally
    halted: bool
    _naps: set[anyio.CancelScope]

    async def probe(self, account: str, request: BatchOp) -> Any:  # the runner's (runner.py)
        raise NotImplementedError

    def _notify(self, event: EngineEvent) -> None:  # the runner's (runner.py)
        raise NotImplementedError

    async def _resolve(self, account: str, name: str) -> str | None:
        """The id of the account's set named ``name``; ``""`` when two reads ``_ABSENT_RECHECK_S`` apart
        both lack it (a set created a moment ago might not be listed yet); ``None`` when that cannot be
        told: the list unreadable on ``_LIST_READS`` reads with a doubling backoff, or the run stopped."""
        absent = 0
        wait = _LIST_BACKOFF_S
        for attempt in range(_LIST_READS):
            if attempt:
                await self._nap(_ABSENT_RECHECK_S if absent else wait)
                if self.halted:
                    return None  # a stop: the next run resolves it
                wait *= 2
            found = await self._find_set(account, name)
            if found:
                return found
            if found == "":
                absent += 1
                if absent >= 2:
                    return ""
        return None

    async def _find_set(self, account: str, name: str) -> str | None:
        """One read of the account's set list (S003: ``GET act_<id>/async_requests``): the id of the set
        named ``name``; ``""`` when the list has none; ``None`` when the list could not be read."""
        params: dict[str, Any] = {"fields": "id,name", "limit": 100}
        trail = CursorTrail()
        for _ in range(_LIST_PAGES):  # the newest first: a set submitted a moment ago is on the first page
            body = await self._read(account, BatchOp("GET", f"{account}/async_requests", dict(params)))
            try:
                page = parse_page(body)
                for found in page.rows:
                    if found.get("name") == name:
                        return str(found["id"])
                if page.after is None:
                    return ""
                trail.follow(page.after)
            except BadPage as bad:
                logger.warning("the request sets of %s could not be read: %s", account, bad)
                return None
            params["after"] = page.after
        return None

    async def _poll(self, account: str, record: AsyncSetRecord) -> SetProgress | None:
        """Read the set's status with a doubling backoff until it completes; an unreadable status is read
        again (until the deadline, like any). Past its deadline (or on a stop) cancel what Graph has not
        processed and, whatever the cancel answered, give the requests in progress ``_GRACE_POLLS`` more
        reads ``poll_initial_s`` apart; then the set is given up. Returns the last status read (``None``:
        none could be read)."""
        cfg = self.config.async_batch
        set_id = str(record.set_id)
        delay = cfg.poll_initial_s
        cancel_tried = False
        grace = 0
        last: SetProgress | None = None
        while True:
            if cancel_tried:  # the requests in progress finish: wait for them, even on a stop
                await self.clock.sleep(cfg.poll_initial_s)
            else:
                await self._nap(delay)
            if not cancel_tried and (
                self.halted or self.clock.wall() >= record.submitted_at + cfg.deadline_s
            ):
                cancel_tried = True
                await self._cancel(account, record)
            progress = await self._progress(account, record)
            if progress is not None:
                last = progress
                finished = progress.success + progress.error
                self._notify(AsyncSetProgress(account, set_id, "in_progress", progress.total, finished))
                if progress.is_completed:
                    return progress
            if cancel_tried:
                grace += 1
                if grace > _GRACE_POLLS:
                    logger.warning("request set %s: given up, still not completed", set_id)
                    return last
            else:
                delay = min(delay * 2, cfg.poll_max_s)

    async def _nap(self, delay: float) -> None:
        """Wait before the next poll; a stop cuts it short (the set is then canceled)."""
        if self.halted:
            return
        with anyio.CancelScope() as scope:
            self._naps.add(scope)
            try:
                await self.clock.sleep(delay)
            finally:
                self._naps.discard(scope)

    async def _read(self, account: str, request: BatchOp) -> Any:
        """One read of the set (status, results page, cancel) paced by the governor like any call."""
        ticket = await self.governor.acquire(account, 1, READS_OF_AD_OBJECTS)
        try:
            self.sets.polls += 1
            return await self.probe(account, request)
        finally:
            self.governor.release(account, 1, READS_OF_AD_OBJECTS, ticket)

    async def _progress(self, account: str, record: AsyncSetRecord) -> SetProgress | None:
        body = await self._read(account, BatchOp("GET", str(record.set_id), {"fields": SET_STATUS_FIELDS}))
        try:
            return set_progress(body)
        except ValueError:
            logger.warning("request set %s: its status could not be read", record.set_id)
            return None

    async def _cancel(self, account: str, record: AsyncSetRecord) -> bool:
        """``DELETE /<set id>``: Graph cancels the requests "not processed yet"; True when it said so."""
        body = await self._read(account, BatchOp("DELETE", str(record.set_id), {}))
        ok = body is True or (isinstance(body, dict) and body.get("success") is True)
        if ok:
            self.sets.canceled += 1
        logger.warning(
            "request set %s: %s",
            record.set_id,
            "canceled its unprocessed requests" if ok else "cancel refused",
        )
        return ok

    async def _results(self, account: str, record: AsyncSetRecord) -> dict[str, dict[str, Any]]:
        """Every request of the set by its name (pages of ``results_page_size``)."""
        out: dict[str, dict[str, Any]] = {}
        params: dict[str, Any] = {
            "fields": REQUEST_FIELDS,
            "limit": self.config.async_batch.results_page_size,
        }
        trail = CursorTrail()
        for _ in range(10_000):  # a bound, never reached: 1,000 requests take one page by default
            body = await self._read(account, BatchOp("GET", f"{record.set_id}/requests", dict(params)))
            try:
                page = parse_page(body)
                for request in page.rows:
                    name = request_name(request)
                    if name is not None:
                        out[name] = request
                if not page.rows or page.after is None:
                    break
                trail.follow(page.after)
            except BadPage as bad:  # what is missing is judged by the set's state (_settle)
                logger.warning("request set %s: its results could not be read: %s", record.set_id, bad)
                break
            params["after"] = page.after
        return out
