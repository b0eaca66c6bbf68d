"""The HTML report: one self-contained page (inline CSS and SVG; no script, font or image is fetched).

Sections: the summary (status, counters), a chart of throughput over time (operations and Graph calls
completed per second), a chart of rate-limit usage over time (usage % per ad account and BUC type, parked
periods shaded, throttles marked), failures grouped by Graph error code, skipped operations grouped by
reason, operations per kind, the ad accounts' rate-limit summary, throttles, tasks, the update tasks' changes
(per object: old → new, grouped changed / unchanged / skipped / failed), and the operations that did not
succeed — the first of each failure or skip group with a count of the rest, so a million-operation
job's page stays small (every operation is in the CSV and JSON reports). The page is built from the report's
aggregates, never from its full operations list. Every value from the report is HTML-escaped. The charts
are :mod:`.charts`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from .charts import throughput_chart, usage_chart
from .diffs import DIFF_STATES, change_text, diff_entries
from .files import AtomicFile
from .migration import migration_campaigns
from .report import all_runs_summary, failures_by_code, kinds_summary, skipped_by_reason
from .summary import PROBLEMS_PER_GROUP, OperationsSummary

__all__ = ["render_html", "write_html"]


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#111827;background:#f9fafb}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#4b5563;margin:0 0 16px}.meta code{font-size:12px}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;font-size:12px;font-weight:600;vertical-align:middle}
.ok{background:#dcfce7;color:#166534}.bad{background:#fee2e2;color:#991b1b}.warn{background:#fef3c7;color:#92400e}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px;min-width:110px}
.card b{display:block;font-size:20px}.card span{color:#6b7280;font-size:12px}
.chart{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:8px;margin:8px 0}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:12px;color:#374151;padding:0 8px 4px}
.legend i{display:inline-block;width:12px;height:3px;margin-right:5px;vertical-align:middle}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #e5e7eb}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #f3f4f6;vertical-align:top}
th{background:#f3f4f6;font-size:12px;text-transform:uppercase;letter-spacing:.03em;color:#374151}
td.n{font-variant-numeric:tabular-nums}
.muted{color:#6b7280}td.group{background:#f9fafb}code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
"""


# --- small helpers ---------------------------------------------------------------------------------------
def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return _e(value)


# --- tables ----------------------------------------------------------------------------------------------
def _table(table_id: str, headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    if rows:
        body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    else:
        body = f'<tr><td colspan="{len(headers)}" class="muted">{_e(empty)}</td></tr>'
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _td(value: Any, numeric: bool = False) -> str:
    return f'<td class="n">{_num(value)}</td>' if numeric else f"<td>{_e(value)}</td>"


def _code_td(values: Sequence[Any]) -> str:
    return "<td>" + ", ".join(f"<code>{_e(v)}</code>" for v in values) + "</td>"


def failures_table(report: Mapping[str, Any]) -> str:
    groups = report.get("failures_by_code")
    if not isinstance(groups, list):
        groups = failures_by_code(report.get("operations") or [])
    rows = []
    for g in groups:
        kinds = ", ".join(f"{k} × {n}" for k, n in (g.get("kinds") or {}).items())
        title = g.get("user_title") or ""
        message = g.get("message") or ""
        detail = f"<b>{_e(title)}</b><br>{_e(message)}" if title else _e(message)
        if g.get("user_msg"):
            detail += f'<br><span class="muted">{_e(g["user_msg"])}</span>'
        rows.append(
            [
                _td("—" if g.get("code") is None else g.get("code")),
                _td(g.get("subcode") or ""),
                f"<td>{detail}</td>",
                _td(g.get("count"), numeric=True),
                _td(kinds),
                _code_td(g.get("examples") or []),
            ]
        )
    return _table(
        "failures",
        ["code", "subcode", "error", "operations", "kinds", "examples"],
        rows,
        "No operation failed.",
    )


def _skipped_table(report: Mapping[str, Any]) -> str:
    groups = report.get("skipped_by_reason")
    if not isinstance(groups, list):
        groups = skipped_by_reason(report.get("operations") or [])
    rows = [
        [_td(g.get("reason")), _td(g.get("count"), numeric=True), _code_td(g.get("examples") or [])]
        for g in groups
    ]
    return _table("skipped", ["reason", "operations", "examples"], rows, "No operation was skipped.")


def _kinds_table(report: Mapping[str, Any]) -> str:
    kinds = report.get("kinds")
    if not isinstance(kinds, Mapping):
        kinds = kinds_summary(report.get("operations") or [])
    rows = [
        [_td(kind)] + [_td(c.get(s, 0), numeric=True) for s in ("succeeded", "failed", "skipped")]
        for kind, c in kinds.items()
        if isinstance(c, Mapping)
    ]
    return _table("kinds", ["operation type", "succeeded", "failed", "skipped"], rows, "No operations.")


def _accounts_table(report: Mapping[str, Any]) -> str:
    rows = []
    for a in report.get("accounts") or ():
        if not isinstance(a, Mapping):
            continue
        rows.append(
            [
                _td(a.get("account_id")),
                _td(a.get("buc_type")),
                _td("" if a.get("last_usage_pct") is None else f"{a['last_usage_pct']:.0f} %"),
                _td("" if a.get("peak_usage_pct") is None else f"{a['peak_usage_pct']:.0f} %"),
                _td(a.get("batches"), numeric=True),
                _td(a.get("calls"), numeric=True),
                _td(a.get("throttle_events"), numeric=True),
                _td(a.get("parked_s_total"), numeric=True),
                _td(a.get("waited_s_total"), numeric=True),
            ]
        )
    return _table(
        "accounts",
        [
            "ad account",
            "BUC type",
            "last usage",
            "peak usage",
            "batches",
            "calls",
            "throttles",
            "parked s",
            "waited s",
        ],
        rows,
        "No calls were sent.",
    )


def _throttles_table(report: Mapping[str, Any]) -> str:
    rows = []
    for t in report.get("throttles") or ():
        if isinstance(t, Mapping):
            code = f"{t.get('code')}/{t.get('subcode')}" if t.get("subcode") else t.get("code")
            rows.append(
                [
                    _td(t.get("t"), numeric=True),
                    _td(t.get("account_id")),
                    _td(t.get("buc_type")),
                    _td(code),
                    _td(t.get("parked_s"), numeric=True),
                    _td(t.get("resumes_at")),
                ]
            )
    return _table(
        "throttles",
        ["at s", "ad account", "BUC type", "code", "parked s", "resumes at (UTC)"],
        rows,
        "The run was never throttled.",
    )


def _tasks_table(report: Mapping[str, Any]) -> str:
    rows = []
    for t in report.get("tasks") or ():
        if isinstance(t, Mapping):
            counts = t.get("counts") or {}
            rows.append(
                [
                    _td(t.get("key")),
                    _td(t.get("type")),
                    *(_td(counts.get(s, 0), numeric=True) for s in ("succeeded", "failed", "skipped")),
                    _td(t.get("http_requests"), numeric=True),
                    _td(t.get("elapsed_s"), numeric=True),
                ]
            )
    return _table(
        "tasks",
        ["task", "type", "succeeded", "failed", "skipped", "HTTP requests", "wall s"],
        rows,
        "No task ran.",
    )


DIFF_ROWS_PER_STATE = 50
"""Objects listed per state (changed / unchanged / skipped / failed) in the changes section; the JSON report
has every object's diff, the CSV report every changed object's."""


def _changes_section(report: Mapping[str, Any]) -> str:
    """Update tasks' per-object diffs (issue 16 item 5): counts per state, then the first objects of each
    state with old → new per field and, for skipped or failed ones, the reason. Empty without update tasks."""
    groups: dict[str, list[Mapping[str, Any]]] = {state: [] for state in DIFF_STATES}
    counts = dict.fromkeys(DIFF_STATES, 0)
    seen = False
    for task in report.get("tasks") or ():
        details = task.get("details") if isinstance(task, Mapping) else None
        if isinstance(details, Mapping) and isinstance(details.get("diff_counts"), Mapping):
            seen = True
            for state in DIFF_STATES:
                counts[state] += int(details["diff_counts"].get(state) or 0)
    if not seen:
        return ""
    for _, entry in diff_entries(report):
        state = str(entry.get("state"))
        if state in groups and len(groups[state]) < DIFF_ROWS_PER_STATE:
            groups[state].append(entry)
    rows = []
    for state in DIFF_STATES:
        if not counts[state]:
            continue
        plural = "" if counts[state] == 1 else "s"
        rows.append(
            [f'<td colspan="4" class="group"><b>{_e(state)}</b> — {_num(counts[state])} object{plural}</td>']
        )
        for entry in groups[state]:
            unchanged = entry.get("unchanged") or ()
            text = change_text(entry) or ("already: " + ", ".join(map(str, unchanged)) if unchanged else "")
            rows.append(
                [
                    f"<td><code>{_e(entry.get('id'))}</code></td>",
                    _td(entry.get("level")),
                    _td(text),
                    _td(entry.get("reason") or ""),
                ]
            )
        if counts[state] > len(groups[state]):
            rows.append(
                [
                    f'<td colspan="4" class="muted">… and {counts[state] - len(groups[state]):,} more '
                    "(every object's diff is in the JSON report)</td>"
                ]
            )
    table = _table("changes", ["object", "level", "old → new", "reason"], rows, "No object to change.")
    return f'<h2 id="changes-heading">Changes (old → new)</h2>{table}'


MIGRATION_ROWS = 200
"""Campaigns listed in the migration section; the JSON report has every one, the map CSV every object."""


def _migration_section(report: Mapping[str, Any]) -> str:
    """Advantage+ migration (issue 17 item 3): per campaign the action, the result, the new id, the objects
    mapped, the Advantage+ state per lever, the verification and switch-over, and the warnings. Empty without
    a migrate task."""
    rows = []
    for n, (_, record) in enumerate(migration_campaigns(report)):
        if n >= MIGRATION_ROWS:
            rows.append(['<td colspan="8" class="muted">… more campaigns in the JSON report</td>'])
            break
        info = record.get("advantage_state_info") or {}
        levers = ", ".join(
            f"{k.removeprefix('advantage_').removesuffix('_state')}: {v}" for k, v in info.items()
        )
        mapped: dict[str, int] = {}
        for entry in record.get("id_map") or ():
            mapped[str(entry.get("type"))] = mapped.get(str(entry.get("type")), 0) + 1
        verified = record.get("verified")
        checks = {True: "verified", False: "NOT verified: " + "; ".join(record.get("verify_problems") or ())}
        check = "; ".join(
            filter(None, (checks.get(verified) if verified is not None else "", record.get("switch")))
        )
        notes = [*(record.get("warnings") or ()), *([str(record["error"])] if record.get("error") else ())]
        rows.append(
            [
                f"<td><code>{_e(record.get('source_id'))}</code> {_e(record.get('name'))}</td>",
                _td(f"{record.get('kind')} · {record.get('eligibility')}"),
                _td(f"{record.get('action') or record.get('manual_path') or '—'} → {record.get('state')}"),
                f"<td><code>{_e(record.get('new_id') or '')}</code></td>",
                _td(", ".join(f"{k} {v}" for k, v in mapped.items())),
                _td(levers or "—"),
                _td(check or "—"),
                _td(" | ".join(map(str, notes))),
            ]
        )
    if not rows:
        return ""
    table = _table(
        "migration",
        ["campaign", "kind · eligibility", "action → result", "new id", "mapped", "Advantage+ state",
         "verification · switch-over", "warnings"],
        rows,
        "No campaign.",
    )  # fmt: skip
    note = '<p class="muted">Old → new ids of every ad set and ad: the <code>.migration.csv</code> next to the CSV report.</p>'
    return f'<h2 id="migration">Advantage+ migration</h2>{table}{note}'


def _problem_ops_table(report: Mapping[str, Any], problems: Sequence[Mapping[str, Any]] | None) -> str:
    """The first operations of each failure and skip group (:mod:`.summary`), and how many more each has:
    the page stays small whatever the job's size; the CSV and JSON reports list every operation."""
    if problems is None:
        problems = OperationsSummary.of(report.get("operations") or ()).problems()
    rows = []
    more_in_all = 0
    for group in problems:
        ops = [op for op in group.get("operations") or () if isinstance(op, Mapping)]
        more = int(group.get("more") or 0)
        more_in_all += more
        total = len(ops) + more
        rows.append(
            [f'<td colspan="7" class="group"><b>{_e(group.get("group"))}</b> — {_num(total)} operations</td>']
        )
        for op in ops:
            error = str(op.get("error") or "")
            reason = str(op.get("reason") or "")
            if error and error in reason:
                reason = ""  # "Graph error 100/33: <the error>": the error column already says it
            rows.append(
                [
                    f"<td><code>{_e(op.get('op_id'))}</code></td>",
                    _td(op.get("kind")),
                    _td(op.get("state")),
                    _td(op.get("code") or ""),
                    _td(error),
                    _td(op.get("blame") or ""),
                    _td(reason),
                ]
            )
        if more:
            rows.append(
                [
                    f'<td colspan="7" class="muted">… and {more:,} more of this group '
                    "(every operation is in the CSV and JSON reports)</td>"
                ]
            )
    table = _table(
        "problems",
        ["operation", "type", "state", "code", "error", "blamed fields", "reason"],
        rows,
        "Every operation succeeded.",
    )
    note = ""
    if more_in_all:
        note = (
            f'<p class="muted">The first {PROBLEMS_PER_GROUP} operations of each group are listed; '
            f"{more_in_all:,} more are in the CSV and JSON reports.</p>"
        )
    return table + note


# --- the page --------------------------------------------------------------------------------------------
def _status_badge(report: Mapping[str, Any]) -> str:
    status = str(report.get("status") or "completed")
    counts = report.get("counts") or {}
    if status == "interrupted":
        return '<span class="badge warn">interrupted</span>'
    if report.get("dry_run") == "server":
        if counts.get("failed") or counts.get("skipped"):
            return '<span class="badge bad">dry run on the server: Graph would refuse some</span>'
        return '<span class="badge ok">dry run on the server: Graph accepted every write</span>'
    if counts.get("failed") or counts.get("skipped"):
        return '<span class="badge bad">finished with problems</span>'
    return f'<span class="badge ok">{_e("dry run" if status == "dry_run" else "all succeeded")}</span>'


def render_html(report: Mapping[str, Any], problems: Sequence[Mapping[str, Any]] | None = None) -> str:
    """The page of ``report``; ``problems`` (:meth:`OperationsSummary.problems`) lists the operations that did
    not succeed — ``None``: folded from ``report["operations"]`` (a report held in memory)."""
    counts = report.get("counts") or {}
    cards = [
        ("succeeded", counts.get("succeeded", 0)),
        ("failed", counts.get("failed", 0)),
        ("skipped", counts.get("skipped", 0)),
        ("HTTP requests", report.get("http_requests", 0)),
        ("Graph calls", report.get("graph_calls", 0)),
        ("retries", report.get("retries", 0)),
        ("throttle events", report.get("throttle_events", 0)),
        ("seconds", report.get("elapsed_s", 0)),
    ]
    card_html = "".join(f'<div class="card"><b>{_num(v)}</b><span>{_e(k)}</span></div>' for k, v in cards)
    meta = []
    for label, key in (
        ("job file", "source"),
        ("Graph URL", "graph_url"),
        ("API", "api_version"),
        ("started", "started_at"),
        ("finished", "finished_at"),
    ):
        if report.get(key):
            meta.append(f"{label} <code>{_e(report[key])}</code>")
    runs = all_runs_summary(report)
    if runs is not None:
        meta.append(_e(runs))
    resume = ""
    if report.get("resume"):
        resume = f'<p class="meta">To finish this job: <code>{_e(report["resume"])}</code></p>'
    title = f"Bulk job {report.get('job_id', '')}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{_e(title)} {_status_badge(report)}</h1>"
        f'<p class="meta">{" · ".join(meta)}</p>{resume}'
        f'<div class="cards">{card_html}</div>'
        '<h2 id="throughput">Throughput</h2>'
        f"{throughput_chart(report)}"
        '<h2 id="usage">Rate-limit usage</h2>'
        f"{usage_chart(report)}"
        '<h2 id="failures-heading">Failures by error code</h2>'
        f"{failures_table(report)}"
        "<h2>Skipped operations by reason</h2>"
        f"{_skipped_table(report)}"
        "<h2>Operations by type</h2>"
        f"{_kinds_table(report)}"
        "<h2>Ad accounts and rate limits</h2>"
        f"{_accounts_table(report)}"
        "<h2>Throttles</h2>"
        f"{_throttles_table(report)}"
        "<h2>Tasks</h2>"
        f"{_tasks_table(report)}"
        f"{_changes_section(report)}"
        f"{_migration_section(report)}"
        "<h2>Operations that did not succeed</h2>"
        f"{_problem_ops_table(report, problems)}"
        "</main></body></html>\n"
    )


def write_html(
    report: Mapping[str, Any], path: str | Path, problems: Sequence[Mapping[str, Any]] | None = None
) -> Path:
    page = render_html(report, problems)
    with AtomicFile(path) as out:
        out.write(page)
    return Path(path)
