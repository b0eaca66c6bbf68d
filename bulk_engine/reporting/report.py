"""The run report: one JSON document that the CSV and HTML writers (and ``bulk-engine report``) render.

Fields (``REPORT_VERSION`` 1) — the DESIGN.md contract first:

- ``job_id``, ``counts`` {succeeded, failed, skipped}, ``http_requests``, ``graph_calls``,
  ``throttle_events``, ``retries``, ``elapsed_s``, ``operations`` (one entry per operation: ``op_id``,
  ``state``, ``account_id``, ``kind``, ``graph_id``, ``result``, ``error`` {code, error_subcode, message,
  error_user_title, error_user_msg, blame_field_specs, fbtrace_id…}, ``reason``, ``attempts``);
- ``status`` (``completed`` | ``interrupted`` | ``dry_run``), ``exit_code``, ``source`` (the job file),
  ``fingerprint``, ``graph_url``, ``api_version``, ``started_at`` / ``finished_at`` (UTC ISO 8601), ``tasks``
  (per-task details from the operations layer), ``kinds`` (states per operation kind), ``accounts`` (per
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

Secrets never reach a report: the whole document goes through :meth:`bulk_engine.scrub.Scrubber.scrub_value`
with the run's token, app secret and ``appsecret_proof`` — the scrubber of every other output (Graph paging
links, for instance, carry the caller's token; a server may echo it in an error message).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bulk_engine.scrub import Scrubber

__all__ = [
    "REPORT_VERSION",
    "REQUIRED_FIELDS",
    "ReportFormatError",
    "all_runs_summary",
    "describe_failure_group",
    "failures_by_code",
    "kinds_summary",
    "load_report",
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


class ReportFormatError(ValueError):
    """A file given to ``bulk-engine report`` is not a run report."""


def redact(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` scrubbed of ``secrets`` — an alias of :meth:`Scrubber.scrub_value` kept for old callers."""
    return Scrubber(secrets).scrub_value(value)


def _error(op: Mapping[str, Any]) -> Mapping[str, Any]:
    error = op.get("error")
    return error if isinstance(error, Mapping) else {}


def failures_by_code(operations: Iterable[Mapping[str, Any]], examples: int = 5) -> list[dict[str, Any]]:
    """Failed operations grouped by (Graph code, subcode), biggest group first.

    Failures without a Graph error (a transport error after every retry…) group under code ``None`` by their
    reason's first words.
    """
    groups: dict[tuple[Any, Any, str], dict[str, Any]] = {}
    for op in operations:
        if op.get("state") != "failed":
            continue
        error = _error(op)
        code, subcode = error.get("code"), error.get("error_subcode")
        label = "" if code is not None else str(op.get("reason") or "no Graph answer").split(":")[0]
        key = (code, subcode, label)
        group = groups.get(key)
        if group is None:
            group = groups[key] = {
                "code": code,
                "subcode": subcode,
                "message": error.get("message") or op.get("reason") or "",
                "user_title": error.get("error_user_title"),
                "user_msg": error.get("error_user_msg"),
                "count": 0,
                "kinds": {},
                "examples": [],
            }
        group["count"] += 1
        kind = str(op.get("kind"))
        group["kinds"][kind] = group["kinds"].get(kind, 0) + 1
        if len(group["examples"]) < examples:
            group["examples"].append(str(op.get("op_id")))
    return sorted(groups.values(), key=lambda g: (-g["count"], str(g["code"]), str(g["subcode"])))


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


def skipped_by_reason(operations: Iterable[Mapping[str, Any]], examples: int = 5) -> list[dict[str, Any]]:
    """Skipped operations grouped by reason (a dependency's name is folded out of the reason)."""
    groups: dict[str, dict[str, Any]] = {}
    for op in operations:
        if op.get("state") != "skipped":
            continue
        reason = str(op.get("reason") or "")
        key = "dependency failed" if reason.startswith("dependency ") else reason
        group = groups.setdefault(key, {"reason": key, "count": 0, "examples": []})
        group["count"] += 1
        if len(group["examples"]) < examples:
            group["examples"].append(str(op.get("op_id")))
    return sorted(groups.values(), key=lambda g: -g["count"])


def kinds_summary(operations: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    kinds: dict[str, dict[str, int]] = {}
    for op in operations:
        counts = kinds.setdefault(str(op.get("kind")), {"succeeded": 0, "failed": 0, "skipped": 0})
        state = str(op.get("state"))
        counts[state] = counts.get(state, 0) + 1
    return dict(sorted(kinds.items()))


def write_json(report: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``report`` atomically (a temporary file renamed over ``path``); returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2, default=str)
            handle.write("\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load_report(path: str | Path) -> dict[str, Any]:
    """Read a report written by ``bulk-engine run --report``; :class:`ReportFormatError` if it is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ReportFormatError(f"{path}: cannot read: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise ReportFormatError(f"{path}:{err.lineno}: not JSON: {err.msg}") from None
    if not isinstance(data, dict):
        raise ReportFormatError(f"{path}: not a run report (a JSON object with {', '.join(REQUIRED_FIELDS)})")
    missing = [name for name in REQUIRED_FIELDS if name not in data]
    if missing:
        raise ReportFormatError(f"{path}: not a run report: missing {', '.join(missing)}")
    if not isinstance(data["operations"], list):
        raise ReportFormatError(f"{path}: not a run report: 'operations' must be a list")
    data.setdefault("failures_by_code", failures_by_code(data["operations"]))
    data.setdefault("skipped_by_reason", skipped_by_reason(data["operations"]))
    data.setdefault("kinds", kinds_summary(data["operations"]))
    return data
