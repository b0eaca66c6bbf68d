"""What every operation module shares: the compile context, local issues, and the engine protocol.

- :class:`CompileContext` is what a caller (CLI, Airflow operator, library user) passes when a job is turned
  into :class:`~bulk_engine.planning.graph.Operation` s: the default ad account, dry-run mode, the clock and
  the send history used by the 12-hour rule of marketing messages. Operations refused locally (a status
  change the status machine forbids, a message inside the 12-hour window) cost no call: they are appended
  to :attr:`CompileContext.skipped` as ``skipped`` :class:`~bulk_engine.results.Outcome` s.
- :class:`Issue` is one violated rule, located by its field path (and, in job files, file, line and column);
  :class:`JobFileError` (a :class:`~bulk_engine.errors.JobValidationError`) carries all issues of a job.
- :class:`EngineLike` is the part of :class:`~bulk_engine.engine.BulkEngine` the multi-phase flows use,
  so this layer does not import the engine (DESIGN.md: ``operations ← engine``).
"""

from __future__ import annotations

import dataclasses
import json
import reprlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bulk_engine.errors import JobValidationError
from bulk_engine.planning.graph import Operation
from bulk_engine.results import JobResult, Outcome, OutcomeState

__all__ = [
    "CompileContext",
    "EngineLike",
    "Issue",
    "JobFileError",
    "TaskEnv",
    "format_path",
]

PathPart = str | int


def format_path(path: Iterable[PathPart]) -> str:
    """``("tasks", 0, "campaigns", 1, "name")`` → ``tasks[0].campaigns[1].name`` (a key longer than 64
    characters is cut: a key is as hostile as a value)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if len(part) <= 64 else part[:63] + "…"
            out += f".{name}" if out else name
    return out or "<root>"


def _short(value: Any, limit: int = 80) -> str:
    """``value`` as JSON-like text of at most ``limit`` characters, built lazily within that budget.

    Only what fits is rendered: a 50 MB string or a "billion laughs" structure costs ``O(limit)``, never a
    serialisation of the whole value. Objects that are not JSON values show as a bounded ``repr``.
    """
    out: list[str] = []
    used = 0
    # a stack of pending pieces: text to emit, or a value to render
    pending: list[tuple[bool, Any]] = [(False, value)]
    while pending and used <= limit:
        is_text, item = pending.pop()
        if is_text:
            piece = item
        elif isinstance(item, str):
            piece = json.dumps(item[: limit + 1], ensure_ascii=False)
            if len(item) > limit + 1:
                piece = piece[:-1]
        elif item is None or isinstance(item, bool):
            piece = json.dumps(item)
        elif isinstance(item, int):
            piece = str(item) if item.bit_length() < 256 else f"<a {item.bit_length()}-bit integer>"
        elif isinstance(item, float):
            piece = repr(item) if item == item and abs(item) != float("inf") else str(item)
        elif isinstance(item, Mapping):
            piece = "{"
            tail: list[tuple[bool, Any]] = [(True, "}")]
            for n, (key, child) in enumerate(item.items()):
                if n * 4 > limit:
                    tail.append((True, ", …"))
                    break
                tail.extend(
                    [
                        (True, ", " if n else ""),
                        (False, key if isinstance(key, str) else str(key)),
                        (True, ": "),
                    ]
                )
                tail.append((False, child))
            # reversed: the stack pops the first piece first
            tail = [tail[0], *reversed(tail[1:])]
            pending.extend(tail)
        elif isinstance(item, list | tuple):
            piece = "["
            tail = [(True, "]")]
            for n, child in enumerate(item):
                if n * 2 > limit:
                    tail.append((True, ", …"))
                    break
                tail.extend([(True, ", " if n else ""), (False, child)])
            pending.extend([tail[0], *reversed(tail[1:])])
        else:
            piece = reprlib.repr(item)
        out.append(piece)
        used += len(piece)
    text = "".join(out)
    return text if len(text) <= limit and not pending else text[: limit - 1] + "…"


VALUE_LIMIT = 200
"""Characters of an offending value kept in ``Issue.to_dict`` (the CLI's ``--log-format json`` event)."""


def _bounded(value: Any) -> Any:
    """A scalar as it is while short; anything longer or nested as its :func:`_short` text: a 50 MB value in
    a job file must not become a 50 MB log line."""
    if (
        value is None
        or isinstance(value, bool | float)
        or (isinstance(value, int) and value.bit_length() < 64)
    ):
        return value
    if isinstance(value, str) and len(value) <= VALUE_LIMIT:
        return value
    return _short(value, VALUE_LIMIT)


@dataclass(frozen=True)
class Issue:
    """One violated rule: where (file, line, column, field path), the offending value, the rule and its Graph
    code. ``line`` and ``column`` are 1-based (``None`` when unknown).

    ``code``/``subcode`` are set when the local rule mirrors a documented Graph error (e.g. 100/1885621), so
    the message tells the user which server error the job would otherwise have produced.
    """

    path: tuple[PathPart, ...]
    message: str
    value: Any = None
    rule: str = "schema"
    code: int | None = None
    subcode: int | None = None
    file: str | None = None
    line: int | None = None
    has_value: bool = True
    column: int | None = None

    @property
    def field_path(self) -> str:
        return format_path(self.path)

    def located(self, file: str | None, line: int | None, column: int | None = None) -> Issue:
        return dataclasses.replace(self, file=file, line=line, column=column)

    def prefixed(self, prefix: tuple[PathPart, ...]) -> Issue:
        return dataclasses.replace(self, path=(*prefix, *self.path))

    def __str__(self) -> str:
        where = self.file or "<job>"
        if self.line is not None:
            where += f":{self.line}" + (f":{self.column}" if self.column is not None else "")
        value = f" = {_short(self.value)}" if self.has_value else ""
        code = ""
        if self.code is not None:
            code = f" [Graph code {self.code}" + (f"/{self.subcode}" if self.subcode else "") + "]"
        return f"{where}: {self.field_path}{value}: {self.message} (rule {self.rule}){code}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "field": self.field_path,
            "value": _bounded(self.value) if self.has_value else None,
            "rule": self.rule,
            "message": self.message,
            "code": self.code,
            "subcode": self.subcode,
        }


class JobFileError(JobValidationError):
    """A job (file or in-memory spec) broke one or more rules; nothing was sent.

    ``str()`` lists every issue on its own line: ``file:line:column: field.path = value: rule text (rule id)
    [Graph code …]``. ``issues`` holds them as :class:`Issue` objects.
    """

    def __init__(self, issues: Iterable[Issue], source: str | None = None) -> None:
        self.issues = tuple(issues)
        self.source = source
        head = f"job {source!r} is invalid" if source else "job is invalid"
        count = len(self.issues)
        lines = [f"{head} ({count} problem{'s' if count != 1 else ''}):"]
        lines.extend(f"  {issue}" for issue in self.issues)
        super().__init__("\n".join(lines))


@dataclass
class CompileContext:
    """Inputs of compiling a job that do not belong in the job file.

    ``default_account_id`` fills tasks (and jobs) that name no ``account_id`` (e.g. the Airflow connection's
    default ad account). ``validate_only`` adds ``execution_options=["validate_only"]`` to every write Graph
    can dry-run (creates and updates), and makes the multi-phase flows stop after their reads. ``now`` is the
    clock (UNIX seconds) used by time rules; ``last_message_sent`` answers when a subscription token last
    received a marketing message (the journal provides it; ``None`` = never). Local refusals are appended to
    ``skipped``.
    """

    default_account_id: str | None = None
    validate_only: bool = False
    # Set by run_job: the job's id and fingerprint, from which each task names its engine jobs
    job_id: str | None = None
    fingerprint: str | None = None
    now: Callable[[], float] = time.time
    last_message_sent: Callable[[str], float | None] = lambda token: None
    skipped: list[Outcome] = field(default_factory=list)

    def skip(self, op_id: str, account_id: str, kind: str, reason: str) -> None:
        self.skipped.append(Outcome(op_id, OutcomeState.SKIPPED, account_id, kind, reason=reason))


@dataclass(frozen=True)
class TaskEnv:
    """Per-task view of a compile: the op-id prefix, the resolved ad account and the job file's folder."""

    key: str
    account_id: str
    base_dir: Path
    ctx: CompileContext

    def op_id(self, *parts: object) -> str:
        return "/".join([self.key, *(str(p) for p in parts)])

    def resolve(self, path: str | Path) -> Path:
        candidate = Path(path)
        return candidate if candidate.is_absolute() else self.base_dir / candidate


class EngineLike(Protocol):
    """What the multi-phase flows need from :class:`~bulk_engine.engine.BulkEngine`."""

    async def run(
        self, job: Any, *, job_id: str | None = None, fingerprint: str | None = None
    ) -> JobResult: ...


def operations_kinds(ops: Iterable[Operation]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op in ops:
        counts[op.kind.value] = counts.get(op.kind.value, 0) + 1
    return counts
