"""``bulk-engine export EDGE``: one ``export`` task built from flags, run like ``bulk-engine run`` runs a job.

Why a command of its own: "give me every ad of this account as a CSV" should not need a job file. The flags
become a one-task job (``docs/job-files.md`` → ``export``), validated the same way before anything is sent —
a problem names its flag, the value, the rule and the Graph code (exit 2) — and run through the same session
as ``run`` (live view, reports, signals, exit codes 0/1/2/3: :func:`~.common.run_one_task`). The token comes from ``$META_ACCESS_TOKEN``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bulk_engine.operations.export import DEFAULT_PAGE_SIZE, EXPORT_EDGES, MAX_PAGE_SIZE

from .common import EXIT_USAGE, TOKEN_ENV, emit_json, one_task_job, run_one_task, say
from .options import account, add_output_options, positive_int

__all__ = ["configure_export", "run_export"]

_FLAGS = {
    "edge": "EDGE",
    "fields": "--fields",
    "filtering": "--filter",
    "effective_status": "--effective-status",
    "output": "--output",
    "format": "--format",
    "page_size": "--page-size",
    "max_rows": "--max-rows",
    "account_id": "--account",
}


def _filter(text: str) -> dict[str, Any]:
    """``--filter '{"field":"name","operator":"CONTAIN","value":"spring"}'`` or ``field:OPERATOR:value``."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            value = json.loads(stripped)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"not JSON: {err}") from None
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError("a filter is a JSON object {field, operator, value}")
        return value
    field, sep, rest = stripped.partition(":")
    operator, sep2, raw = rest.partition(":")
    if not (sep and sep2 and field and operator):
        raise argparse.ArgumentTypeError(
            f"expected FIELD:OPERATOR:VALUE (e.g. name:CONTAIN:spring) or a JSON object, got {text!r}"
        )
    items: Any = (
        [v for v in raw.split(",") if v]
        if operator.upper() in ("IN", "NOT_IN", "ANY", "ALL", "NONE")
        else raw
    )
    if isinstance(items, str) and items.lstrip("-").isdigit():
        items = int(items)
    return {"field": field, "operator": operator.upper(), "value": items}


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def configure_export(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Export an ad-account edge to CSV or JSON Lines, page by page (cursors), with chosen fields and "
        f"filters; the page size adapts when Graph asks for less data. Token from ${TOKEN_ENV}. Exit codes: "
        "0 exported, 1 the export failed (the previous output file is kept), 2 bad input (nothing sent), "
        "3 interrupted."
    )
    parser.add_argument("edge", metavar="EDGE", help=f"one of {', '.join(EXPORT_EDGES)}")
    parser.add_argument("--account", type=account, required=True, metavar="act_…", help="the ad account")
    parser.add_argument(
        "--fields",
        type=_names,
        required=True,
        metavar="F1,F2",
        help="fields to read, e.g. name,status,campaign{name}",
    )
    parser.add_argument(
        "--filter",
        dest="filtering",
        type=_filter,
        action="append",
        default=[],
        metavar="FIELD:OP:VALUE",
        help="a Graph filter (repeatable, ANDed): name:CONTAIN:spring, id:IN:1,2, or the JSON object",
    )
    parser.add_argument(
        "--effective-status",
        type=_names,
        metavar="S1,S2",
        help="e.g. ACTIVE,PAUSED (campaigns, adsets, ads)",
    )
    parser.add_argument(
        "--output",
        "-o",
        required=True,
        metavar="PATH",
        help="the file to write (.csv / .jsonl)",
    )
    parser.add_argument(
        "--format",
        choices=("csv", "jsonl"),
        help="default: from the output's extension",
    )
    parser.add_argument(
        "--page-size",
        type=positive_int,
        default=DEFAULT_PAGE_SIZE,
        metavar="N",
        help=f"largest page (limit) asked for, at most {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE}); it halves "
        "when Graph asks for less data and grows back",
    )
    parser.add_argument("--max-rows", type=positive_int, metavar="N", help="stop after N rows")
    add_output_options(parser)


def _task(args: argparse.Namespace) -> dict[str, Any]:
    task: dict[str, Any] = {
        "type": "export",
        "key": "export",
        "edge": args.edge,
        "fields": args.fields,
        "filtering": args.filtering,
        "output": str(Path(args.output).resolve()),
        "page_size": args.page_size,
    }
    for name in ("effective_status", "format", "max_rows"):
        if getattr(args, name) is not None:
            task[name] = getattr(args, name)
    return task


def _flag_issue(issue: Any) -> str:
    """An issue of the one-task job, worded for the command line: the flag instead of the field path."""
    path = list(issue.path)
    if path[:2] == ["tasks", 0]:
        path = path[2:]
    where = _FLAGS.get(str(path[0]), str(path[0])) if path else "bulk-engine export"
    if path[1:] and isinstance(path[1], int):
        where += f" #{path[1] + 1}"
    value = f" = {json.dumps(issue.value, default=str)[:80]}" if issue.has_value else ""
    code = f" [Graph code {issue.code}]" if issue.code is not None else ""
    return f"{where}{value}: {issue.message} (rule {issue.rule}){code}"


def run_export(args: argparse.Namespace) -> int:
    from bulk_engine.operations import JobFileError

    try:
        spec = one_task_job(args, _task(args), "bulk-engine export")
    except JobFileError as err:
        for issue in err.issues:
            say(args, f"bulk-engine export: {_flag_issue(issue)}", err=True)
        if args.log_format == "json":
            emit_json(
                args,
                "invalid_job",
                source=err.source,
                issues=[i.to_dict() for i in err.issues],
            )
        return EXIT_USAGE
    title = f"bulk-engine export {args.account}/{args.edge} → {args.output}"
    code, done = run_one_task(args, spec, source="bulk-engine export", title=title)
    details = done.details if done is not None else {}
    if not details.get("written"):
        say(
            args,
            f"bulk-engine export: nothing written; {args.output} is unchanged",
            err=True,
        )
        return code
    sizes = details.get("page_size", {})
    shrunk = f"; page size went down to {sizes['smallest']}" if sizes.get("shrinks") else ""
    if args.log_format == "json":
        emit_json(
            args,
            "exported",
            rows=details["rows"],
            pages=details["pages"],
            output=details["output"],
        )
    else:
        say(
            args,
            f"exported {details['rows']:,} rows in {details['pages']:,} pages to {details['output']}{shrunk}",
        )
    return code
