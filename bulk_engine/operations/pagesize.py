"""The page size of an export: halve when Graph asks for less data, grow back once pages come through.

Why: Graph answers a read that would return too much with code 1, HTTP 500, "Please reduce the amount of data
you're asking for, then retry your request" — it depends on the fields asked for and the server's load, not
on the request being wrong. S003 §Paginated Results: ``limit`` "is the maximum number of objects that may be
returned", so a smaller ``limit`` on the same cursor asks for less and loses nothing. The refusal is often
passing (load), so the size grows back by doubling after ``grow_after`` good pages; a size that was refused
needs twice as many good pages for each refusal before it is tried again, so a size the server always
refuses is not retried forever (no oscillation). Pure and table-tested.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bulk_engine.errors import BulkEngineError

__all__ = ["AdaptivePageSize", "PageSizeFloor"]


class PageSizeFloor(BulkEngineError):
    """The smallest page was refused too: asking for less is impossible (fewer fields may help)."""


@dataclass
class AdaptivePageSize:
    """``limit`` to ask for next; :meth:`refused` and :meth:`succeeded` move it."""

    maximum: int
    minimum: int = 1
    grow_after: int = 4
    limit: int = 0
    streak: int = 0
    refusals: dict[int, int] = field(default_factory=dict)
    shrinks: int = 0
    grows: int = 0
    smallest: int = 0

    def __post_init__(self) -> None:
        self.limit = self.limit or self.maximum
        self.smallest = self.smallest or self.limit

    def refused(self) -> int:
        """The current size was refused: the next one (half, at least ``minimum``); raises at the floor."""
        self.refusals[self.limit] = self.refusals.get(self.limit, 0) + 1
        self.streak = 0
        if self.limit <= self.minimum:
            raise PageSizeFloor(f"a page of {self.limit} was refused")
        self.limit = max(self.minimum, self.limit // 2)
        self.shrinks += 1
        self.smallest = min(self.smallest, self.limit)
        return self.limit

    def succeeded(self) -> int:
        """A page came through: maybe grow back (doubling, at most ``maximum``)."""
        self.streak += 1
        bigger = min(self.maximum, self.limit * 2)
        needed = self.grow_after * 2 ** self.refusals.get(bigger, 0)
        if bigger > self.limit and self.streak >= needed:
            self.limit = bigger
            self.streak = 0
            self.grows += 1
        return self.limit
