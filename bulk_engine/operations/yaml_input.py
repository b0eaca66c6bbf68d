"""YAML job files read as the parser's event stream: one pass, no node tree, every limit checked on the way.

``yaml.CSafeLoader`` (libyaml) parses when this PyYAML has it (``yaml.__with_libyaml__``), the pure-Python
parser otherwise; both are state machines, so nothing here recurses. Containers are built with an explicit
stack; an alias's expanded size is known when it is met (sizes are counted as containers close), so a
"billion laughs" is refused at the alias that crosses :data:`MAX_ALIAS_VALUES` without building anything.
Line numbers are not recorded: :func:`yaml_positions` finds the few a report needs by parsing again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, Final

import yaml
import yaml.events as ev

from .base import Issue, JobFileError, PathPart
from .input_limits import (
    MAX_ALIAS_VALUES,
    MAX_DEPTH,
    MAX_NUMBER_DIGITS,
    MAX_READ_ISSUES,
    NOT_FINITE,
    BadNumber,
    DocPath,
    Position,
    fail,
    too_long,
)

__all__ = ["YAML_LOADER", "read_yaml", "yaml_positions"]

YAML_LOADER: Final[type[Any]] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser when this PyYAML has it (``yaml.__with_libyaml__``), else the pure-Python one."""

_CORE = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_CORE + t for t in ("str", "int", "float", "bool", "null"))
_TIMESTAMP, _MERGE, _VALUE, _YAMLTAG = (_CORE + t for t in ("timestamp", "merge", "value", "yaml"))
_SCALAR_TAGS = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL, _TIMESTAMP, _MERGE, _VALUE, _YAMLTAG})
_RESOLVERS: dict[str, list[tuple[str, re.Pattern[str]]]] = {
    first: list(found) for first, found in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
}
_TRUE = frozenset({"yes", "true", "on"})
_MISSING: Any = object()


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


def _mark(event: Any) -> Position:
    mark = event.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)


class _YamlReader:
    """Builds the document from events with a stack of open containers (no recursion, no nodes)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.issues: list[Issue] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.open_anchors: set[str] = set()
        self.expanded = 0
        self.memo: dict[str, str] = {}
        # open containers: container, is_map, pending key (_MISSING: expecting a key), size, anchor, merges
        self.stack: list[list[Any]] = []

    # where we are, rebuilt only when something is reported
    def path(self) -> DocPath:
        out: list[PathPart] = []
        for container, is_map, key, *_ in self.stack:
            if is_map:
                if key is not _MISSING and key is not _MERGE_KEY:
                    out.append(key)
            else:
                out.append(len(container))
        return tuple(out)

    def report(
        self, rule: str, message: str, event: Any, value: Any = None, *, has_value: bool = False
    ) -> None:
        if len(self.issues) < MAX_READ_ISSUES:
            line, column = _mark(event)
            self.issues.append(
                Issue(
                    self.path(),
                    message,
                    value,
                    rule,
                    file=self.source,
                    line=line or None,
                    column=column or None,
                    has_value=has_value,
                )
            )

    def stop(self, rule: str, message: str, event: Any) -> JobFileError:
        self.report(rule, message, event)
        return JobFileError(self.issues[-1:], self.source)

    def read(self, raw: bytes) -> Any:
        loader = None
        try:
            loader = YAML_LOADER(raw)  # the pure-Python reader already checks characters here
            return self._build(loader.get_event)
        except yaml.MarkedYAMLError as err:
            raise _yaml_syntax(err, self.source) from None
        except yaml.YAMLError as err:
            raise _yaml_reader_error(err, raw, self.source) from None
        finally:
            if loader is not None:
                loader.dispose()

    def _build(self, get: Callable[[], Any]) -> Any:
        stack = self.stack
        memo = self.memo
        scalar_event, alias_event = ev.ScalarEvent, ev.AliasEvent
        map_start, seq_start = ev.MappingStartEvent, ev.SequenceStartEvent
        map_end, seq_end = ev.MappingEndEvent, ev.SequenceEndEvent
        root: Any = _MISSING
        documents = 0
        while True:
            event = get()
            kind = type(event)
            size = 1
            if kind is scalar_event:
                if stack and stack[-1][1] and stack[-1][2] is _MISSING:  # a mapping key: its text
                    if event.tag is not None and event.tag != "!":
                        self._check_tag(event, _SCALAR_TAGS)
                    top = stack[-1]
                    text = event.value
                    if text == "<<" and event.implicit[0]:
                        top[2] = _MERGE_KEY
                    else:
                        key = memo.setdefault(text, text)
                        duplicate = key in top[0]
                        top[2] = key
                        if duplicate:
                            self.report(
                                "file.duplicate_key",
                                "duplicate key (YAML keeps only the last one)",
                                event,
                                key,
                                has_value=True,
                            )
                    continue
                value = self._scalar(event)
                if type(value) is str and len(value) <= 64:
                    value = memo.setdefault(value, value)
                if event.anchor is not None:
                    self.anchors[event.anchor] = (value, 1)
            elif kind is map_start or kind is seq_start:
                if stack and stack[-1][1] and stack[-1][2] is _MISSING:
                    raise self.stop(
                        "file.yaml_key",
                        "a key must be plain text, not a list or a mapping (a YAML complex key)",
                        event,
                    )
                if len(stack) >= MAX_DEPTH:
                    raise self.stop(
                        "file.depth",
                        f"nested more than {MAX_DEPTH} levels deep (lists and mappings): no job needs that; "
                        "the file is refused before it is read further",
                        event,
                    )
                if event.tag is not None and event.tag != "!":
                    self._check_tag(event, frozenset({_CORE + ("map" if kind is map_start else "seq")}))
                if event.anchor is not None:
                    self.open_anchors.add(event.anchor)
                stack.append(
                    [{} if kind is map_start else [], kind is map_start, _MISSING, 1, event.anchor, None]
                )
                continue
            elif kind is map_end or kind is seq_end:
                container, _, _, size, anchor, merges = stack.pop()
                if merges:
                    merged: dict[str, Any] = {}
                    for one in reversed(merges):
                        merged.update(one)
                    merged.update(container)
                    container = merged
                value = container
                if anchor is not None:
                    self.open_anchors.discard(anchor)
                    self.anchors[anchor] = (value, size)
            elif kind is alias_event:
                if stack and stack[-1][1] and stack[-1][2] is _MISSING:
                    raise self.stop("file.yaml_key", "a key must be plain text, not an alias", event)
                value, size = self._alias(event)
            elif kind is ev.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise self.stop(
                        "file.documents", "a job file holds one YAML document (found a second '---')", event
                    )
                continue
            elif kind is ev.StreamEndEvent:
                break
            else:  # stream start, document end
                continue
            # place the value in its parent
            if not stack:
                root = value
                continue
            top = stack[-1]
            top[3] += size
            if top[1]:
                key = top[2]
                if key is _MERGE_KEY:
                    self._merge(top, value, event)
                else:
                    top[0][key] = value
                top[2] = _MISSING
            else:
                top[0].append(value)
        if root is _MISSING:
            raise fail(self.source, "file.empty", "the job file is empty (no YAML document)", (1, 1))
        if self.issues:
            raise JobFileError(self.issues, self.source)
        return root

    def _alias(self, event: Any) -> tuple[Any, int]:
        name = event.anchor
        if name in self.open_anchors:
            raise self.stop(
                "file.alias_cycle",
                f"alias *{name} is inside its own anchor &{name}: a recursive structure has no end",
                event,
            )
        found = self.anchors.get(name)
        if found is None:
            raise self.stop(
                "file.yaml", f"invalid YAML: alias *{name} names no anchor defined before it", event
            )
        self.expanded += found[1]
        if self.expanded > MAX_ALIAS_VALUES:
            raise self.stop(
                "file.aliases",
                f"YAML aliases expand to more than {MAX_ALIAS_VALUES:,} values (a 'billion laughs' "
                "document?): write the values out, or use fewer aliases of big anchors",
                event,
            )
        return found

    def _merge(self, top: list[Any], value: Any, event: Any) -> None:
        parts = value if isinstance(value, list) else [value]
        if not all(isinstance(part, dict) for part in parts):
            self.report(
                "file.yaml_merge",
                "a merge key (<<) takes a mapping or a list of mappings",
                event,
                value,
                has_value=True,
            )
            return
        top[5] = (top[5] or []) + parts

    def _check_tag(self, event: Any, allowed: frozenset[str]) -> bool:
        if event.tag in allowed:
            return True
        self.report(
            "file.yaml_tag",
            f"YAML tag {_tag_name(event.tag)} is not allowed: job files hold plain values (text, numbers, "
            "true/false, null, lists, mappings)",
            event,
        )
        return False

    def _scalar(self, event: Any) -> Any:
        text: str = event.value
        tag = event.tag
        if tag is None or tag == "!":
            if not event.implicit[0]:
                return text
            candidates = _RESOLVERS.get(text[:1])
            if candidates is None:
                return text
            tag = _STR
            for candidate, pattern in candidates:
                if pattern.match(text):
                    tag = candidate
                    break
        elif not self._check_tag(event, _SCALAR_TAGS):
            return None
        if tag == _STR or tag == _TIMESTAMP or tag == _VALUE or tag == _YAMLTAG or tag == _MERGE:
            return text
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return text.lower() in _TRUE
        try:
            return _yaml_int(text) if tag == _INT else _yaml_float(text)
        except BadNumber as bad:
            self.report("file.number", bad.reason, event, text[:100], has_value=True)
        except ValueError:  # an explicit !!int / !!float on text that is not one
            kind = "a whole number" if tag == _INT else "a number"
            self.report(
                "file.number", f"tagged {_tag_name(tag)} but not {kind}", event, text[:100], has_value=True
            )
        return None


_MERGE_KEY: Any = object()


def _yaml_int(text: str) -> int:
    """YAML 1.1 integers as PyYAML's SafeConstructor reads them (``0x``, ``0o``/``0``, ``0b``, ``1:30``)."""
    if len(text) > MAX_NUMBER_DIGITS:
        raise too_long(text)
    value = text.replace("_", "")
    sign = -1 if value[:1] == "-" else 1
    if value[:1] in "+-":
        value = value[1:]
    if value == "0":
        return 0
    if value.startswith("0b"):
        return sign * int(value[2:], 2)
    if value.startswith("0x"):
        return sign * int(value[2:], 16)
    if value.startswith("0"):
        return sign * int(value, 8)
    if ":" in value:
        number = 0
        for part in value.split(":"):
            number = number * 60 + int(part)
        return sign * number
    return sign * int(value)


def _yaml_float(text: str) -> float:
    if len(text) > MAX_NUMBER_DIGITS:
        raise too_long(text)
    value = text.replace("_", "").lower()
    sign = -1.0 if value[:1] == "-" else 1.0
    if value[:1] in "+-":
        value = value[1:]
    if value in (".inf", ".nan"):
        raise BadNumber(NOT_FINITE)
    if ":" in value:
        number = 0.0
        for part in value.split(":"):
            number = number * 60 + float(part)
        return sign * number
    number = sign * float(value)
    if not math.isfinite(number):
        raise BadNumber(f"{NOT_FINITE}; this one is out of range")
    return number


def _yaml_syntax(err: yaml.MarkedYAMLError, source: str) -> JobFileError:
    mark = err.problem_mark or err.context_mark
    where = (mark.line + 1, mark.column + 1) if mark is not None else None
    message = f"invalid YAML: {err.problem or err.context or 'cannot be read'}"
    if err.context and err.problem and err.context_mark is not None:
        message += (
            f" ({err.context} at line {err.context_mark.line + 1}, column {err.context_mark.column + 1})"
        )
    rule = "file.depth" if "maximum nesting depth" in message else "file.yaml"  # libyaml's own bound
    return fail(source, rule, message, where)


def _yaml_reader_error(err: yaml.YAMLError, raw: bytes, source: str) -> JobFileError:
    position = getattr(err, "position", None)
    reason = getattr(err, "reason", None) or str(err).split("\n", 1)[0]
    character = getattr(err, "character", None)
    where: Position | None = None
    if isinstance(position, int):
        text = raw.decode("utf-8", "replace")[:position]
        where = (text.count("\n") + 1, position - (text.rfind("\n") + 1) + 1)
    what = f"character {character!r}: " if isinstance(character, str) else ""
    return fail(source, "file.yaml", f"invalid YAML: {what}{reason}", where)


def read_yaml(raw: bytes, source: str) -> Any:
    """The document of a UTF-8 YAML file as JSON values; :class:`JobFileError` on any problem."""
    return _YamlReader(source).read(raw)


def yaml_positions(raw: bytes, wanted: set[DocPath]) -> dict[DocPath, Position]:
    """Positions of ``wanted`` paths in a YAML file (keys: the key's mark; list items: the item's)."""
    found: dict[DocPath, Position] = {}
    if not raw or not wanted:
        return found
    prefixes = wanted
    try:
        loader = YAML_LOADER(raw)
    except yaml.YAMLError:
        return found
    # frames: is_map, current key / next index, expecting a key
    stack: list[list[Any]] = []
    path: list[PathPart] = []
    try:
        while len(found) < len(wanted):
            event = loader.get_event()
            kind = type(event)
            if kind is ev.StreamEndEvent:
                break
            if kind in (ev.StreamStartEvent, ev.DocumentStartEvent, ev.DocumentEndEvent):
                continue
            if kind is ev.MappingEndEvent or kind is ev.SequenceEndEvent:
                stack.pop()
                if stack:
                    _after_value(stack, path)
                continue
            if stack and stack[-1][0] and stack[-1][2]:  # a key
                key = str(event.value) if kind is ev.ScalarEvent else "?"
                stack[-1][1], stack[-1][2] = key, False
                path.append(key)
                here = tuple(path)
                if here in prefixes and here not in found:
                    found[here] = _mark(event)
                continue
            if stack and not stack[-1][0]:
                path.append(stack[-1][1])
            here = tuple(path)
            if here in prefixes and here not in found:
                found[here] = _mark(event)
            if kind is ev.MappingStartEvent or kind is ev.SequenceStartEvent:
                if here not in prefixes:  # nothing wanted below: skip the subtree cheaply
                    _skip(loader)
                    if stack:
                        _after_value(stack, path)
                    continue
                stack.append([kind is ev.MappingStartEvent, 0, kind is ev.MappingStartEvent])
                continue
            if stack:
                _after_value(stack, path)
    except yaml.YAMLError:
        pass
    finally:
        loader.dispose()
    return found


def _after_value(stack: list[list[Any]], path: list[PathPart]) -> None:
    top = stack[-1]
    if path:
        path.pop()
    if top[0]:
        top[2] = True
    else:
        top[1] += 1


def _skip(loader: Any) -> None:
    depth = 1
    while depth:
        kind = type(loader.get_event())
        if kind is ev.MappingStartEvent or kind is ev.SequenceStartEvent:
            depth += 1
        elif kind is ev.MappingEndEvent or kind is ev.SequenceEndEvent:
            depth -= 1
        elif kind is ev.StreamEndEvent:
            return
