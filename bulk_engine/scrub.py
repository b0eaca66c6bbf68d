"""The one scrubber every output goes through: logs, live view and JSON lines, reports, journal, XComs.

Why one: Graph answers can carry the caller's secrets back — paging links hold the access token, and a
server (or a proxy) may echo the request, token and ``appsecret_proof`` included, in an error message. A
secret must therefore be removed wherever text leaves the process, and every sink must remove the same
spellings of it; separate redactors drift apart (the report's used to skip short values, the journal's
did not).

* :class:`Scrubber` replaces each secret by :data:`REDACTED` in text (:meth:`Scrubber.text`, or call it)
  and in nested JSON-like values (:meth:`Scrubber.scrub_value`: dict keys and values, lists, tuples).
  Each secret is matched as it is, percent-encoded (``quote`` and ``quote_plus``, upper- and lower-case hex,
  with and without ``/`` kept: a token inside a form body or a URL) and JSON-escaped (``\\uXXXX`` or
  not, ``/`` escaped as ``\\/`` or not: a token inside a JSON string).
* :class:`ScrubFilter` is a :class:`logging.Filter` for handlers: it scrubs the final message (arguments
  merged), the exception text and the stack, so no formatter — text or JSON — sees the raw values.
* :func:`scrubbing_logs` installs one on every handler a logger's records reach, for as long as a block
  runs (the Airflow operators use it around the engine).

Cut secrets: a prefix of at least :data:`MIN_PARTIAL` characters of any spelling is scrubbed too, wherever
it stands. Messages get truncated on their way out (the engine cuts a Graph error message quoted in a
reason, and a malformed header quoted in a log line) and an echo cut in the middle of a token still hands
out most of it. (A secret cut at its *start* is not recognised; nothing cuts that way.)

Short secrets: values shorter than :data:`MIN_SECRET` (6) characters are *not* scrubbed. No real
credential is that short (access tokens have well over 100 characters, app secrets 32, proofs 64 — and the
proof of a short token or secret is still 64 and still scrubbed), so Graph refuses such a token and there
is nothing to protect; scrubbing one would shred every output instead — with the token ``t`` every "t" of
"http", "started" and the report's keys became ``[redacted]``, and the CLI could no longer read its own
report (``report["exit_code"]`` was gone). Text already holding ``[redacted]`` is left as it is, so
scrubbing twice (a title, then the line it is printed in) changes nothing more.

Numbers are not scanned (``scrub_value`` leaves non-strings alone) so JSON output stays valid: a secret
made of digits only would still show inside a number. No Meta credential is digits only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar, cast
from urllib.parse import quote, quote_plus

__all__ = [
    "MIN_PARTIAL",
    "MIN_SECRET",
    "REDACTED",
    "ScrubFilter",
    "Scrubber",
    "scrub",
    "scrubbing_logs",
    "spellings",
]

REDACTED = "[redacted]"
MIN_SECRET = 6  # shorter values are no credential: not scrubbed (see the module docstring)
MIN_PARTIAL = 8  # a secret's leading characters from which on a cut copy counts as the secret
_T = TypeVar("_T")
_PERCENT_HEX = re.compile(r"%[0-9A-F]{2}")


def spellings(secret: str) -> set[str]:
    """The ways ``secret`` can appear in text: raw, percent-encoded, JSON-escaped."""
    forms = {secret}
    for encoded in (quote(secret, safe=""), quote(secret), quote_plus(secret, safe=""), quote_plus(secret)):
        forms.add(encoded)
        forms.add(_PERCENT_HEX.sub(lambda m: m.group(0).lower(), encoded))  # %2f as some encoders write it
    for ascii_only in (True, False):
        escaped = json.dumps(secret, ensure_ascii=ascii_only)[1:-1]
        forms.update((escaped, escaped.replace("/", "\\/")))  # Graph's own JSON escapes "/" as "\/"
    return forms


class Scrubber:
    """Replaces every spelling of each of ``secrets`` by ``[redacted]`` (see the module docstring).

    ``None`` and values shorter than :data:`MIN_SECRET` are ignored. One regular expression finds where a spelling (or its first
    :data:`MIN_PARTIAL` characters) starts; each hit is extended as far as the text goes on spelling it,
    overlapping hits are merged, and the result is built in one pass, so no part of a secret is left behind
    and ``[redacted]`` is never itself rescanned. ``repr`` shows how many secrets there are, never them.
    """

    __slots__ = ("_by_head", "_count", "_pattern")

    def __init__(self, secrets: Iterable[str | None]) -> None:
        values = {s for s in secrets if s and len(s) >= MIN_SECRET}
        by_head: dict[str, list[str]] = {}
        for secret in values:
            for form in spellings(secret):
                by_head.setdefault(form[:MIN_PARTIAL], []).append(form)
        heads = sorted(by_head, key=lambda h: (-len(h), h))  # at one position, the longest head wins
        self._count = len(values)
        self._by_head = by_head
        self._pattern = re.compile("|".join(map(re.escape, heads))) if heads else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __repr__(self) -> str:
        return f"Scrubber({self._count} secret{'' if self._count == 1 else 's'})"

    def __call__(self, text: str) -> str:
        return self.text(text)

    def text(self, text: str) -> str:
        """``text`` with every secret (and every cut copy of at least ``MIN_PARTIAL`` characters) replaced."""
        pattern = self._pattern
        if pattern is None or not text:
            return text
        if REDACTED in text:  # never scrub inside an earlier "[redacted]": scrubbing stays idempotent
            return REDACTED.join(self._cut(pattern, part) for part in text.split(REDACTED))
        return self._cut(pattern, text)

    def _cut(self, pattern: re.Pattern[str], text: str) -> str:
        """One pass over ``text``: the hits of ``pattern``, extended and merged, each cut out."""
        pieces: list[str] = []
        emitted = cut_start = cut_end = 0
        found = pattern.search(text)
        while found is not None:
            start = found.start()
            end = start + self._reach(text, start, found.group())
            if start < cut_end:  # overlaps the cut being built: widen it
                cut_end = max(cut_end, end)
            else:
                if cut_end:
                    pieces += (text[emitted:cut_start], REDACTED)
                    emitted = cut_end
                cut_start, cut_end = start, end
            found = pattern.search(text, start + 1)
        if not cut_end:
            return text
        pieces += (text[emitted:cut_start], REDACTED, text[cut_end:])
        return "".join(pieces)

    def _reach(self, text: str, start: int, head: str) -> int:
        """How many characters from ``start`` spell (the beginning of) a secret whose spelling starts with
        ``head``; a head shorter than ``MIN_PARTIAL`` is a whole short spelling and only matches whole."""
        best = len(head)
        if len(head) < MIN_PARTIAL:
            return best
        for form in self._by_head[head]:
            if text.startswith(form, start):
                best = max(best, len(form))
                continue
            n = len(head)
            limit = min(len(form), len(text) - start)
            while n < limit and text[start + n] == form[n]:
                n += 1
            best = max(best, n)
        return best

    def scrub_value(self, value: _T) -> _T:
        """``value`` with every string inside it scrubbed: dict keys and values, list/tuple/set items.

        Returns new containers (mappings become dicts); other values (numbers, ``None``…) come back as they
        are, so a JSON-like value stays JSON-like.
        """
        if self._pattern is None:
            return value
        return cast(_T, self._value(value))

    def _value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self._value(k): self._value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._value(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self._value(v) for v in value)
        if isinstance(value, set | frozenset):
            return type(value)(self._value(v) for v in value)
        return value

    def dumps(self, value: Any, **kwargs: Any) -> str:
        """``json.dumps`` of ``value`` scrubbed; objects JSON cannot encode are ``str()``-ed, then scrubbed."""
        return json.dumps(self.scrub_value(value), default=lambda o: self.text(str(o)), **kwargs)


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` without any of ``secrets`` (a one-off :class:`Scrubber`)."""
    return Scrubber(secrets).text(text)


class ScrubFilter(logging.Filter):
    """Scrubs a log record before its handler formats it: message, exception text and stack.

    Install it on *handlers* (``handler.addFilter``): a logger's filters only see records logged on that
    very logger, not those of its children. The record is changed in place — ``msg`` becomes the final,
    scrubbed message with no ``args`` left to merge, and a traceback becomes scrubbed ``exc_text`` with
    ``exc_info`` cleared — so every later handler and formatter (text, JSON, structlog's) gets the clean
    values; a formatter that renders ``exc_info`` itself could otherwise print the raw exception.
    """

    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__()
        self.scrubber = scrubber

    def __repr__(self) -> str:
        return f"ScrubFilter({self.scrubber!r})"

    def filter(self, record: logging.LogRecord) -> bool:
        scrub = self.scrubber
        if not scrub:
            return True
        try:
            message = record.getMessage()
        except Exception:  # bad format arguments: logging would print msg and args raw in handleError
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = scrub.text(message), ()
        if record.exc_info:
            record.exc_text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = scrub.text(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub.text(record.stack_info)
        return True


def _handlers_reached(logger: logging.Logger) -> list[logging.Handler]:
    """The handlers ``logger``'s records go to (what :meth:`logging.Logger.callHandlers` walks): its own
    and its ancestors' up to the first non-propagating logger, and :data:`logging.lastResort`, which
    stands in when none of them has a handler."""
    found: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        found.extend(current.handlers)
        current = current.parent if current.propagate else None
    if logging.lastResort is not None:
        found.append(logging.lastResort)
    return list(dict.fromkeys(found))


@contextlib.contextmanager
def scrubbing_logs(scrubber: Scrubber, logger: str = "bulk_engine") -> Iterator[ScrubFilter]:
    """Scrub every record that reaches a handler from ``logger`` (and its children) while the block runs.

    Why at the handlers: records of ``bulk_engine.runner`` and friends propagate to handlers someone else
    configured (Airflow's task log, an application's root handler), whose formatters we do not control.
    Handlers added while the block runs are not covered (add :class:`ScrubFilter` to them yourself). The
    filter is removed from exactly the handlers it was added to.
    """
    installed = ScrubFilter(scrubber)
    handlers = _handlers_reached(logging.getLogger(logger))
    for handler in handlers:
        handler.addFilter(installed)
    try:
        yield installed
    finally:
        for handler in handlers:
            handler.removeFilter(installed)
