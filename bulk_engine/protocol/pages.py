"""One page of a cursor-paginated edge answer, checked: its rows, the cursor to continue from, or why not.

S003 §Paginated Results → Cursor-based Pagination: an answer is ``{"data": [...], "paging": {"cursors":
{"before", "after"}, "next", "previous"}}``; "Stop paging when the next link no longer appears"; "it is
possible that a page may be empty but contain a next paging link". The next page is requested with
``after=<paging.cursors.after>`` on our own request — the ``next`` URL itself is never followed: it carries
the access token and may name any host. Pure; table-tested. Used by the export
(``operations/export.py``) and the async backend's set list and results (``execution/async_backend.py``).

A hostile answer ends the export with a :class:`BadPage` naming what was wrong, instead of guessing:
``data`` not a list, an entry that is not an object with an ``id``, ``paging`` missing (whether more pages
follow cannot be told), ``next`` without an ``after`` cursor. A repeated cursor is the caller's check
(:class:`CursorTrail`): it would loop for ever.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bulk_engine.errors import BulkEngineError

__all__ = ["BadPage", "CursorTrail", "Page", "parse_page"]

MAX_CURSOR = 4096
"""Characters of a cursor we accept (Graph's are a few dozen base64 characters)."""


class BadPage(BulkEngineError, ValueError):
    """The answer is not a page we can continue from (the message says why); the export catches it and
    ends with that reason, the async backend treats the read as unreadable."""


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    after: str | None  # the cursor of the next page; None: this was the last page


def parse_page(body: Any) -> Page:
    """The rows of ``body`` and the cursor of the next page (see the module docstring)."""
    if not isinstance(body, Mapping):
        raise BadPage(f"the answer is not a JSON object but {type(body).__name__}")
    data = body.get("data")
    if not isinstance(data, list):
        raise BadPage("the answer has no 'data' list")
    for n, row in enumerate(data):
        if (
            not isinstance(row, dict)
            or not isinstance(row.get("id"), str | int)
            or isinstance(row["id"], bool)
        ):
            raise BadPage(f"data[{n}] is not an object with an id: {_short(row)}")
    paging = body.get("paging")
    if not isinstance(paging, Mapping):
        raise BadPage("the answer has no 'paging' object: whether more pages follow cannot be told")
    if not paging.get("next"):
        return Page(data, None)
    cursors = paging.get("cursors")
    after = cursors.get("after") if isinstance(cursors, Mapping) else None
    if not isinstance(after, str) or not after or len(after) > MAX_CURSOR:
        raise BadPage("paging.next is present but paging.cursors.after is missing or not a cursor")
    return Page(data, after)


class CursorTrail:
    """The cursors an export followed: a cursor seen twice means the server sends us round in a loop."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def follow(self, cursor: str) -> None:
        if cursor in self._seen:
            raise BadPage(f"the cursor {_short(cursor)} came back a second time: paging would never end")
        self._seen.add(cursor)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"
