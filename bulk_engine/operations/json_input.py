"""JSON job files: :func:`json.loads` (C speed) behind a cheap depth scan, with hooks that refuse what the
limits forbid; a positional walk says where a problem is, or where a path is written, only when asked.

The depth scan strips strings and counts brackets (``bytes.translate`` and ``itertools.accumulate``), so
``json.loads`` never meets more than :data:`MAX_DEPTH` levels; number hooks refuse long literals before
``int()`` sees them, and NaN/Infinity; an ``object_pairs_hook`` refuses duplicate keys.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from itertools import accumulate
from typing import Any

from .base import Issue, JobFileError, PathPart
from .input_limits import (
    MAX_DEPTH,
    MAX_NUMBER_DIGITS,
    MAX_READ_ISSUES,
    NOT_FINITE,
    DocPath,
    Position,
    byte_position,
    fail,
    problem,
    too_long,
)

__all__ = ["json_positions", "parse_json_text", "read_json"]

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_DEPTH_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_BRACKET_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


class _JsonValueError(ValueError):
    """Raised from the :func:`json.loads` hooks; the slow scan then finds where it is."""


def _json_int(text: str) -> int:
    if len(text) > MAX_NUMBER_DIGITS:
        raise _JsonValueError(text)
    return int(text)


def _json_float(text: str) -> float:
    if len(text) > MAX_NUMBER_DIGITS:
        raise _JsonValueError(text)
    number = float(text)
    if not math.isfinite(number):
        raise _JsonValueError(text)
    return number


def _json_constant(text: str) -> Any:
    raise _JsonValueError(text)


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise _JsonValueError("duplicate")
    return found


def _json_depth_ok(raw: bytes) -> bool:
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return True
    steps = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS).translate(_BRACKET_STEP)
    return max(accumulate(1 if step == 1 else -1 for step in steps), default=0) <= MAX_DEPTH


def read_json(raw: bytes, source: str) -> Any:
    """The value of a UTF-8 JSON file; :class:`JobFileError` on any problem."""
    if not raw.strip():
        raise fail(source, "file.empty", "the job file is empty (no JSON value)", (1, 1))
    if not _json_depth_ok(raw):
        raise _json_too_deep(raw, source)
    try:
        data = json.loads(
            raw,
            parse_int=_json_int,
            parse_float=_json_float,
            parse_constant=_json_constant,
            object_pairs_hook=_json_object,
        )
    except _JsonValueError:
        raise JobFileError(_JsonScan(raw, source).problems(), source) from None
    except json.JSONDecodeError as err:
        start = raw.rfind(b"\n", 0, err.pos) + 1 if err.pos <= len(raw) else 0
        where = (err.lineno, len(raw[start : err.pos].decode("utf-8", "replace")) + 1)
        raise fail(source, "file.json", f"invalid JSON: {err.msg}", where) from None
    if _ESCAPED_SURROGATE.search(raw):
        problems = _JsonScan(raw, source).problems()
        if problems:
            raise JobFileError(problems, source)
    return data


def parse_json_text(text: str) -> Any:
    """JSON held in a job's text value (e.g. a ``page_welcome_message`` string), within the same limits as a
    job file; ``ValueError`` when it is not JSON or breaks one."""
    raw = text.encode("utf-8", "surrogatepass")
    if not _json_depth_ok(raw):
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
    try:
        return json.loads(text, parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _json_too_deep(raw: bytes, source: str) -> JobFileError:
    depth = 0
    for match in _JSON_DEPTH_TOKEN.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                return fail(
                    source,
                    "file.depth",
                    f"nested more than {MAX_DEPTH} levels deep (lists and objects): no job needs that; "
                    "the file is refused before it is parsed",
                    byte_position(raw, match.start()),
                )
        elif token in (b"]", b"}"):
            depth -= 1
    return fail(source, "file.depth", f"nested more than {MAX_DEPTH} levels deep")


_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_LITERALS = ("true", "false", "null")
_CONSTANTS = ("NaN", "Infinity", "-Infinity")


class _JsonScan:
    """A positional JSON walk (of a file :func:`json.loads` read, so valid and of bounded depth) for what
    the fast parse cannot say: where a bad number, a duplicate key or a lone surrogate is, and where paths
    are written.

    With ``wanted``, only those paths (and what leads to them) are entered; every other value is skipped at C
    speed by :meth:`json.JSONDecoder.raw_decode`.
    """

    def __init__(self, raw: bytes, source: str, wanted: set[DocPath] | None = None) -> None:
        self.text = raw.decode("utf-8", "surrogatepass")
        self.source = source
        self.wanted = wanted
        self.found: dict[DocPath, int] = {}
        self.issues: list[tuple[int, Issue]] = []
        self.skipper = json.JSONDecoder(parse_constant=lambda text: None, parse_int=lambda text: 0)

    def positions(self, indices: Iterable[int]) -> dict[int, Position]:
        """(line, column) of each character index, in one pass over the text."""
        out: dict[int, Position] = {}
        line, line_start, at = 1, 0, 0
        for index in sorted(set(indices)):
            line += self.text.count("\n", at, index)
            newline = self.text.rfind("\n", at, index)
            if newline >= 0:
                line_start = newline + 1
            at = index
            out[index] = (line, index - line_start + 1)
        return out

    def report(self, path: DocPath, index: int, rule: str, message: str, value: Any) -> None:
        if len(self.issues) < MAX_READ_ISSUES:
            self.issues.append((index, Issue(path, message, value, rule, file=self.source)))

    def problems(self) -> list[Issue]:
        """Every problem of the file (bad numbers, duplicate keys, lone surrogates), located."""
        try:
            self.walk()
        except (ValueError, IndexError):
            pass
        where = self.positions(index for index, _ in self.issues)
        found = [issue.located(self.source, *where[index]) for index, issue in self.issues]
        return found or [problem(self.source, "file.json", "invalid JSON")]

    def located(self) -> dict[DocPath, Position]:
        try:
            self.walk()
        except (ValueError, IndexError):
            pass
        where = self.positions(self.found.values())
        return {path: where[index] for path, index in self.found.items()}

    def walk(self) -> None:
        text = self.text
        ws = _ws
        path: list[PathPart] = []
        stack: list[list[Any]] = []  # frames: is_object, next index (arrays), keys seen (objects)
        i = ws(text, 0)
        expect_value = True
        while True:
            if expect_value:
                expect_value = False
                here = tuple(path)
                if self.wanted is not None:
                    if here in self.wanted:
                        self.found.setdefault(here, i)
                    else:
                        i = ws(text, self.skipper.raw_decode(text, i)[1])
                        continue
                char = text[i]
                if char == "{" or char == "[":
                    i = ws(text, i + 1)
                    if text[i] in "}]":
                        i += 1
                    elif char == "{":
                        stack.append([True, 0, set()])
                        i = self._key(stack[-1], path, i)
                        expect_value = True
                        continue
                    else:
                        stack.append([False, 0, None])
                        path.append(0)
                        expect_value = True
                        continue
                elif char == '"':
                    value, i = json.decoder.scanstring(text, i + 1)  # type: ignore[attr-defined]
                    if self.wanted is None and not _is_unicode(value):
                        self.report(
                            here,
                            i,
                            "file.text",
                            "text with a lone UTF-16 surrogate escape (\\ud800-\\udfff) is not valid Unicode",
                            value.encode("utf-8", "backslashreplace").decode()[:80],
                        )
                else:
                    i = self._scalar(here, i)
                i = ws(text, i)
                continue
            if not stack:
                return
            top = stack[-1]
            if text[i] == ",":
                i = ws(text, i + 1)
                if top[0]:
                    path.pop()
                    i = self._key(top, path, i)
                else:
                    top[1] += 1
                    path[-1] = top[1]
                expect_value = True
                continue
            stack.pop()  # "}" or "]"
            path.pop()
            i = ws(text, i + 1)

    def _key(self, frame: list[Any], path: list[PathPart], i: int) -> int:
        key, end = json.decoder.scanstring(self.text, i + 1)  # type: ignore[attr-defined]
        here = (*path, key)
        if self.wanted is not None:
            if here in self.wanted:
                self.found.setdefault(here, i)
        else:
            if key in frame[2]:
                self.report(
                    here, i, "file.duplicate_key", "duplicate key (JSON keeps only the last one)", key
                )
            frame[2].add(key)
        path.append(key)
        end = _ws(self.text, end) + 1  # past ":"
        return _ws(self.text, end)

    def _scalar(self, path: DocPath, i: int) -> int:
        text = self.text
        for word in _LITERALS:
            if text.startswith(word, i):
                return i + len(word)
        for word in _CONSTANTS:
            if text.startswith(word, i):
                self.report(path, i, "file.number", NOT_FINITE, word)
                return i + len(word)
        match = _NUMBER.match(text, i)
        literal = match.group() if match else text[i]
        if len(literal) > MAX_NUMBER_DIGITS:
            self.report(path, i, "file.number", too_long(literal).reason, literal[:100])
        elif ("." in literal or "e" in literal or "E" in literal) and not math.isfinite(float(literal)):
            self.report(path, i, "file.number", f"{NOT_FINITE}; this one is out of range", literal[:100])
        return i + len(literal)


def _ws(text: str, i: int) -> int:
    """The index of the first non-blank character at or after ``i``."""
    match = _WS.match(text, i)
    return match.end() if match is not None else i


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_positions(raw: bytes, wanted: set[DocPath]) -> dict[DocPath, Position]:
    return _JsonScan(raw, "", wanted).located() if raw and wanted else {}
