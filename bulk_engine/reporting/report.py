"""The run report: one JSON document that the CSV and HTML writers (and ``bulk-engine report``) render.

Fields (``REPORT_VERSION`` 1) — the DESIGN.md contract first:

- ``job_id``, ``counts`` {succeeded, failed, skipped}, ``http_requests``, ``graph_calls``,
  ``throttle_events``, ``retries``, ``elapsed_s``, ``operations`` (one entry per operation: ``op_id``,
  ``state``, ``account_id``, ``kind``, ``graph_id``, ``result``, ``error`` {code, error_subcode, message,
  error_user_title, error_user_msg, blame_field_specs, fbtrace_id…}, ``reason``, ``attempts``);
- ``status`` (``completed`` | ``interrupted`` | ``dry_run``), ``exit_code``, ``source`` (the job file),
  ``fingerprint``, ``graph_url``, ``api_version``, ``started_at`` / ``finished_at`` (UTC ISO 8601), ``tasks``
  (per-task details from the operations layer; ``elapsed_s`` is wall seconds, like the header's), ``kinds`` (states per operation kind), ``accounts`` (per
  ad account and BUC type: last and peak usage %, batches, calls, throttles, time parked, the pair's own
  waits and time waited), ``throttles`` (each throttle: when, which account and BUC type, for how long,
  until when), ``waits`` (each scope that waited — the app, an ad account, or an account × BUC type pair:
  how many waits, seconds waited in all, the last reason and usage %), ``failures_by_code``,
  ``skipped_by_reason``, ``timeseries`` {interval_s, samples: [{t, ops_done, calls_done, in_flight, usage
  {"act_…/ads_management": pct}, parked [...]}]}, ``resume`` (how to finish an interrupted run),
  ``unfinished`` (operations known not to have reached a terminal state when a run was interrupted) and
  ``all_runs`` — the counters over every journaled run of the job, this one included ({runs, http_requests,
  graph_calls, retries, throttle_events, unknown_outcomes, lookups, recovered, elapsed_s}; the counters
  above count this run only), ``null`` without a journal or when the run was interrupted.

Layout: the fields above in that order, ``operations`` last with one operation per line, so a report is
written and read back as a stream (:class:`JsonReportWriter`, :func:`read_report`): a million-operation
report never has to fit in memory. Any JSON object with the fields loads, whatever its layout.

Secrets never reach a report: the whole document goes through :meth:`bulk_engine.scrub.Scrubber.scrub_value`
with the run's token, app secret and ``appsecret_proof`` — the scrubber of every other output (Graph paging
links, for instance, carry the caller's token; a server may echo it in an error message).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import ijson

from bulk_engine.errors import BulkEngineError
from bulk_engine.scrub import Scrubber

from .files import AtomicFile
from .summary import OperationsSummary

__all__ = [
    "REPORT_VERSION",
    "REQUIRED_FIELDS",
    "JsonReportWriter",
    "ReportFormatError",
    "StreamedReport",
    "all_runs_summary",
    "describe_failure_group",
    "failures_by_code",
    "kinds_summary",
    "load_report",
    "read_report",
    "redact",
    "skipped_by_reason",
    "write_json",
]

REPORT_VERSION = 1
REQUIRED_FIELDS = (
    "job_id",
    "counts",
    "http_requests",
    "graph_calls",
    "throttle_events",
    "retries",
    "elapsed_s",
    "operations",
)
Operations = Callable[[], Iterator[Mapping[str, Any]]]


class ReportFormatError(BulkEngineError, ValueError):
    """A file given to ``bulk-engine report`` is not a run report."""


def redact(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` scrubbed of ``secrets`` — an alias of :meth:`Scrubber.scrub_value` kept for old callers."""
    return Scrubber(secrets).scrub_value(value)


def failures_by_code(operations: Iterable[Mapping[str, Any]], examples: int = 5) -> list[dict[str, Any]]:
    """Failed operations grouped by (Graph code, subcode), biggest group first.

    Failures without a Graph error (a transport error after every retry…) group under code ``None`` by their
    reason's first words.
    """
    return OperationsSummary.of(operations, examples=examples).failures_by_code()


def skipped_by_reason(operations: Iterable[Mapping[str, Any]], examples: int = 5) -> list[dict[str, Any]]:
    """Skipped operations grouped by reason (a dependency's name is folded out of the reason)."""
    return OperationsSummary.of(operations, examples=examples).skipped_by_reason()


def kinds_summary(operations: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    return OperationsSummary.of(operations).kinds()


def describe_failure_group(group: Mapping[str, Any]) -> str:
    """``failed × 3 with Graph error 100/1885621: <user title or message> (e.g. op1, op2, op3)``."""
    code, subcode = group.get("code"), group.get("subcode")
    if code is None:
        what = "without a Graph answer"
    else:
        what = f"with Graph error {code}" + (f"/{subcode}" if subcode else "")
    examples = ", ".join(str(e) for e in (group.get("examples") or [])[:3])
    text = group.get("user_title") or group.get("message") or ""
    return f"failed × {group.get('count', 0):,} {what}: {text}" + (f" (e.g. {examples})" if examples else "")


def all_runs_summary(report: Mapping[str, Any]) -> str | None:
    """``3 runs: 12 Graph calls, 4 HTTP requests, 45.0 s in all`` when the job took more than one run, else
    ``None`` (the report's own counters then say it all)."""
    totals = report.get("all_runs")
    if not isinstance(totals, Mapping) or int(totals.get("runs") or 0) <= 1:
        return None
    return (
        f"{int(totals['runs']):,} runs: {int(totals.get('graph_calls') or 0):,} Graph calls, "
        f"{int(totals.get('http_requests') or 0):,} HTTP requests, "
        f"{float(totals.get('elapsed_s') or 0.0):.1f} s in all"
    )


# --- a report as a stream ------------------------------------------------------------------------------
@dataclass
class StreamedReport:
    """A report as its ``head`` (every field but ``operations``) and a way to read its operations, again and
    again, one at a time (``operations()`` starts a fresh pass).

    :meth:`summarise` makes one pass and fills the head's aggregates (``counts``, ``kinds``,
    ``failures_by_code``, ``skipped_by_reason``) and :attr:`problems` — the first non-succeeded operations of
    each group, what the HTML report lists.
    """

    head: dict[str, Any]
    operations: Operations
    problems: list[dict[str, Any]] | None = None
    summary: OperationsSummary | None = None

    @classmethod
    def of(cls, report: Mapping[str, Any]) -> StreamedReport:
        """A report held in memory (``operations`` a list) as a stream."""
        ops = [op for op in report.get("operations") or () if isinstance(op, Mapping)]
        return cls({k: v for k, v in report.items() if k != "operations"}, lambda: iter(ops))

    def summarise(self, *, fill_only: bool = False) -> OperationsSummary:
        """One pass over the operations, then :meth:`apply` (``fill_only``: keep the aggregates the head
        already has — a saved report's own, or counts a caller set)."""
        summary = OperationsSummary.of(self.operations())
        self.apply(summary, fill_only=fill_only)
        return summary

    def apply(self, summary: OperationsSummary, *, fill_only: bool = False, counts: bool = True) -> None:
        """Set the head's aggregates and :attr:`problems` from ``summary`` (a pass over these operations)."""
        values = {
            "counts": dict(summary.counts),
            "kinds": summary.kinds(),
            "failures_by_code": summary.failures_by_code(),
            "skipped_by_reason": summary.skipped_by_reason(),
        }
        if not counts:
            del values["counts"]
        for key, value in values.items():
            if not fill_only or key not in self.head:
                self.head[key] = value
        self.problems = summary.problems()
        self.summary = summary

    def materialize(self) -> dict[str, Any]:
        """The whole report as one dict (small reports: tests, the library)."""
        return {**self.head, "operations": [dict(op) for op in self.operations()]}


class JsonReportWriter:
    """Writes a report as a stream: the head's fields, then ``operations`` one per line as they are added.

    ``with JsonReportWriter(path, head) as out: out.add(op)…`` — atomic: a temporary file beside ``path``,
    renamed over it when the block ends without an exception (removed otherwise).
    """

    def __init__(self, path: str | Path, head: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.head = head
        self.count = 0
        self._file: AtomicFile | None = None
        self._out: IO[str] | None = None

    def __enter__(self) -> JsonReportWriter:
        self._file = AtomicFile(self.path)
        self._out = out = self._file.out
        out.write("{\n")
        for key, value in self.head.items():
            if key == "operations":
                continue
            text = json.dumps(value, indent=2, default=str).replace("\n", "\n  ")
            out.write(f"  {json.dumps(str(key))}: {text},\n")
        out.write('  "operations": [')
        return self

    def add(self, op: Mapping[str, Any]) -> None:
        assert self._out is not None, "use JsonReportWriter in a with block"
        self._out.write(("\n    " if self.count == 0 else ",\n    ") + json.dumps(op, default=str))
        self.count += 1

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._out is not None and self._file is not None
        ok = kind is None
        try:
            if ok:
                self._out.write("\n  ]\n}\n" if self.count else "]\n}\n")
        except BaseException:
            ok = False
            raise
        finally:
            self._file.finish(ok)


def write_json(report: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``report`` (its ``operations`` a list) atomically; returns the path."""
    with JsonReportWriter(path, report) as out:
        for op in report.get("operations") or ():
            out.add(op)
    return Path(path)


def read_report(path: str | Path) -> StreamedReport:
    """A saved report, read incrementally (ijson): the head now, the operations on each pass.

    Raises :class:`ReportFormatError` if the file is not JSON or not a run report (the whole file is checked
    here, once, so the passes over the operations find no surprise).
    """
    target = Path(path)
    try:
        with target.open("rb") as handle:
            head = _read_head(handle, target)
    except OSError as err:
        raise ReportFormatError(f"{path}: cannot read: {err.strerror}") from None
    except ijson.JSONError as err:
        raise ReportFormatError(f"{path}: not JSON: {_ijson_message(err)}") from None

    def operations() -> Iterator[Mapping[str, Any]]:
        with target.open("rb") as handle:
            for op in ijson.items(handle, "operations.item", use_float=True):
                if isinstance(op, Mapping):
                    yield op

    return StreamedReport(head, operations)


def _read_head(handle: IO[bytes], path: Path) -> dict[str, Any]:
    """Every top-level field but ``operations`` (built), checking the operations are a list (skipped)."""
    events = ijson.parse(handle, use_float=True)
    first = next(events, None)
    if first is None or first[1] != "start_map":
        raise ReportFormatError(f"{path}: not a run report (a JSON object with {', '.join(REQUIRED_FIELDS)})")
    head: dict[str, Any] = {}
    key: str | None = None
    builder: ijson.ObjectBuilder | None = None
    operations: str | None = None  # the JSON type of the operations value
    for prefix, event, value in events:
        if prefix == "":
            if builder is not None and key is not None:
                head[key] = builder.value
            builder = None
            if event == "map_key":
                key = str(value)
                if key != "operations":
                    builder = ijson.ObjectBuilder()
            continue
        if key == "operations":
            if operations is None:
                operations = event
            continue
        if builder is not None:
            builder.event(event, value)
    missing = [name for name in REQUIRED_FIELDS if name not in head and name != "operations"]
    if operations is None:
        missing.append("operations")
    if missing:
        raise ReportFormatError(f"{path}: not a run report: missing {', '.join(missing)}")
    if operations != "start_array":
        raise ReportFormatError(f"{path}: not a run report: 'operations' must be a list")
    return head


def _ijson_message(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


def load_report(path: str | Path) -> dict[str, Any]:
    """Read a report written by ``bulk-engine run --report`` into memory, its aggregates filled in when an
    older report lacks them; :class:`ReportFormatError` if it is not one. (Large reports: :func:`read_report`.)"""
    saved = read_report(path)
    report = saved.materialize()
    summary = OperationsSummary.of(report["operations"])
    report.setdefault("failures_by_code", summary.failures_by_code())
    report.setdefault("skipped_by_reason", summary.skipped_by_reason())
    report.setdefault("kinds", summary.kinds())
    return report
