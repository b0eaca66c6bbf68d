"""Moved to :mod:`bulk_engine.protocol.pages` (the async backend parses pages too, and ``execution`` may not
import ``operations``); re-exported here for the export and its tests."""

from __future__ import annotations

from bulk_engine.protocol.pages import MAX_CURSOR, BadPage, CursorTrail, Page, parse_page

__all__ = ["MAX_CURSOR", "BadPage", "CursorTrail", "Page", "parse_page"]
