"""Reading job files safely: bytes → JSON-shaped data, bounded, with file:line:column found only when needed.

A job file comes from a person or a generator and may be anything: another encoding, a binary, a "billion
laughs" YAML, 100,000 nested brackets, a 5,000-digit number. Every such file ends as a
:class:`~bulk_engine.operations.base.JobFileError` naming file:line:column and the rule, never a traceback,
and in time and memory proportional to the file's size:

- **Encoding**: UTF-8 only (a UTF-8 byte order mark is fine); the first bad byte is reported with its byte
  offset, line and column, and UTF-16/32 or binary files are named as such.
- **One pass, no node tree**: YAML is read as the C parser's event stream (:mod:`.yaml_input`) and built into
  plain dicts and lists while the limits below are checked; JSON is read by :func:`json.loads` after a cheap
  bracket scan of its depth (:mod:`.json_input`). Neither records line numbers: :class:`Locator` finds the
  positions of the few paths that have an issue by reading the file again, so a valid 50 MB job costs no
  line table at all.
- **Values are JSON values**: text, numbers, true/false, null, lists and mappings with text keys. YAML
  keys are taken as written (``1:`` is the key ``"1"``), YAML timestamps stay text (Graph reads them),
  merge keys (``<<``) work, and any other tag (``!!binary``, ``!!python/object``, ``!!set``…) is refused.

Limits (each far above any real job, each refused with its own rule id; see ``docs/job-files.md``):

=======================  ==================  ============================================================
``MAX_DEPTH``            64                  nesting of mappings and lists (a real job needs ~20); refused
                                             before any recursion (rule ``file.depth``)
``MAX_ALIAS_VALUES``     1,000,000           values YAML aliases may add by expansion, counted without
                                             building anything (rule ``file.aliases``); an alias inside
                                             its own anchor is refused at once (``file.alias_cycle``)
``MAX_NUMBER_DIGITS``    4,300               characters of one number (Python's own int limit);
                                             NaN and ±Infinity are refused too (``file.number``)
``MAX_FILE_BYTES``       256 MiB             size of a job file (put more in a streamed CSV)
=======================  ==================  ============================================================
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from .base import Issue, JobFileError
from .input_limits import (
    MAX_ALIAS_VALUES,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NUMBER_DIGITS,
    DocPath,
    Position,
    byte_position,
    fail,
)
from .json_input import json_positions, parse_json_text, read_json
from .yaml_input import YAML_LOADER, read_yaml, yaml_positions

__all__ = [
    "MAX_ALIAS_VALUES",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NUMBER_DIGITS",
    "NO_LOCATOR",
    "YAML_LOADER",
    "Locator",
    "Position",
    "parse_json_text",
    "read_document",
]


class Locator:
    """Where paths of a document are written, found by reading the file again — only when an issue needs it.

    :meth:`locate` finds every path of a report (and their prefixes) in one pass; :meth:`position` answers
    for a path or its longest written prefix (a path through a YAML alias or merge key resolves to the
    alias). A locator without a ``finder`` (a job built in Python) knows nothing and keeps nothing.
    """

    def __init__(self, finder: Callable[[set[DocPath]], dict[DocPath, Position]] | None) -> None:
        self._finder = finder
        self._known: dict[DocPath, Position] = {}

    def locate(self, paths: Iterable[DocPath]) -> None:
        if self._finder is None:
            return
        known = self._known
        wanted = {path[:end] for path in paths for end in range(len(path) + 1) if path[:end] not in known}
        if wanted:
            found = self._finder(wanted)
            known.update(found)
            known.update(dict.fromkeys(wanted - found.keys(), (0, 0)))  # not written: not looked for again

    def position(self, path: DocPath) -> Position | None:
        self.locate([path])
        for end in range(len(path), -1, -1):
            found = self._known.get(path[:end])
            if found is not None and found[0] > 0:
                return found
        return None


NO_LOCATOR: Final = Locator(None)


def read_document(path: Path, source: str) -> tuple[Any, Locator]:
    """The file's data (JSON values) and a :class:`Locator` for it; :class:`JobFileError` on any problem."""
    raw = _read_bytes(path, source)
    raw = _utf8(raw, source)
    if path.suffix.lower() == ".json":
        return read_json(raw, source), Locator(lambda wanted: json_positions(_reread(path), wanted))
    return read_yaml(raw, source), Locator(lambda wanted: yaml_positions(_reread(path), wanted))


# --- bytes and encoding -------------------------------------------------------------------------------------
def _read_bytes(path: Path, source: str) -> bytes:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        issue = Issue((), f"cannot read the job file: {err.strerror}", source, "file.read", file=source)
        raise JobFileError([issue], source) from None
    if len(raw) > MAX_FILE_BYTES:
        raise fail(
            source,
            "file.size",
            f"the job file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB: put long lists of ids or "
            "tokens in a CSV file (streamed) and split the rest into several jobs",
        )
    return raw


def _reread(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError:
        return b""
    return raw[3:] if raw.startswith(codecs.BOM_UTF8) else raw


def _utf8(raw: bytes, source: str) -> bytes:
    """``raw`` without its UTF-8 byte order mark, once it is known to be UTF-8 text without NUL bytes."""
    for bom, name in (
        (codecs.BOM_UTF32_LE, "UTF-32"),
        (codecs.BOM_UTF32_BE, "UTF-32"),
        (codecs.BOM_UTF16_LE, "UTF-16"),
        (codecs.BOM_UTF16_BE, "UTF-16"),
    ):
        if raw.startswith(bom):
            raise fail(
                source,
                "file.encoding",
                f"the file is {name} (it starts with a {name} byte order mark): job files must be UTF-8; "
                "save it as UTF-8",
                (1, 1),
            )
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[3:]
    nul = raw.find(b"\x00")
    if nul >= 0:
        hint = (
            "the file looks UTF-16 (every other byte is NUL): save it as UTF-8"
            if raw[1:64:2].count(0) > 16 or raw[0:64:2].count(0) > 16
            else "this is not a text file"
        )
        raise fail(
            source,
            "file.encoding",
            f"NUL byte at byte offset {nul}: {hint}; job files must be UTF-8 text",
            byte_position(raw, nul),
        )
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    chunk = 1 << 22
    for start in range(0, len(raw), chunk):
        try:
            decoder.decode(raw[start : start + chunk], final=start + chunk >= len(raw))
        except UnicodeDecodeError as err:
            offset = start + err.start
            raise fail(
                source,
                "file.encoding",
                f"byte 0x{raw[offset]:02x} at byte offset {offset} is not UTF-8: job files must be UTF-8 "
                "(was it saved as Latin-1 or Windows-1252?)",
                byte_position(raw, offset),
            ) from None
    return raw
